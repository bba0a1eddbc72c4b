#!/usr/bin/perl
# Verifies the DKIM signature of each message file named after the first argument with Perl's Mail::DKIM, the
# verifier behind SpamAssassin's DKIM plugin and many receiving servers, as a receiver would. The key records are
# asked of the DNS server given first as HOST:PORT (the tests' local one, tests/conftest.py `zone`), not of the
# world's. Prints one line per file: FILE <tab> result (pass, fail, invalid, none...) <tab> Mail::DKIM's detail.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my ($server, @files) = @ARGV;
die "usage: dkim_verify.pl HOST:PORT FILE...\n" unless $server && @files;
my ($host, $port) = split /:/, $server;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => [$host], port => $port, recurse => 1, retry => 1, udp_timeout => 5, tcp_timeout => 5));

for my $file (@files) {
    open my $fh, '<:raw', $file or die "$file: $!\n";
    my $verifier = Mail::DKIM::Verifier->new();
    $verifier->load($fh);
    close $fh;
    printf "%s\t%s\t%s\n", $file, $verifier->result, $verifier->result_detail;
}
