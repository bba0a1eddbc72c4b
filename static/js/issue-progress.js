// Keeps an issue's sending progress true without reloading the page (templates/admin/_issue_progress.html):
// a scheduled issue switches to live progress by itself when its sending starts, the numbers follow the
// ledger, and the buttons shown are only those that apply to the state now.
(function () {
  "use strict";
  var box = document.getElementById("sending-progress");
  if (!box) return;
  var bar = document.getElementById("sending-bar");
  var FIELDS = ["percent_done", "sent", "failed", "pending", "recipients", "skipped", "not_sent", "rate_per_second",
                "pause_reason"];
  var LIVE = ["scheduled", "sending"];

  function timeLeft(seconds) {
    if (seconds === null) return "estimating…";
    if (seconds < 60) return "less than a minute left";
    return "about " + Math.ceil(seconds / 60) + " min left";
  }

  function showState(status) {
    box.dataset.status = status;
    document.querySelectorAll("[data-show]").forEach(function (part) {
      part.hidden = part.dataset.show.split(" ").indexOf(status) < 0;
    });
    if (status === "scheduled" || status === "draft") return;
    box.hidden = false;
    // The issue went to readers: it can no longer be edited, scheduled, canceled as a draft or deleted.
    document.querySelectorAll("[data-only-when=editable]").forEach(function (part) { part.hidden = true; });
    document.querySelectorAll("#issue-form fieldset").forEach(function (set) { set.disabled = true; });
    document.querySelectorAll("[data-show-when-locked]").forEach(function (part) { part.hidden = false; });
    var pill = document.getElementById("issue-status");
    if (pill) { pill.textContent = status; pill.className = "status status-" + status; }
  }

  function showNumbers(progress) {
    bar.value = progress.percent_done;
    FIELDS.forEach(function (name) {
      box.querySelectorAll('[data-field="' + name + '"]').forEach(function (field) {
        field.textContent = name === "pause_reason" ? (progress[name] || "paused by you.") : progress[name];
      });
    });
    box.querySelectorAll('[data-field="rate"]').forEach(function (field) { field.textContent = progress.rate_per_second; });
    box.querySelectorAll('[data-field="time_left"]').forEach(function (field) { field.textContent = timeLeft(progress.seconds_left); });
    box.querySelectorAll("[data-show-if]").forEach(function (part) { part.hidden = !progress[part.dataset.showIf]; });
  }

  // A scheduled issue far off is checked once a minute; one about to go, or going, every two seconds.
  function delay() {
    if (box.dataset.status !== "scheduled" || !box.dataset.sendAt) return 2000;
    return Date.parse(box.dataset.sendAt) - Date.now() > 10 * 60 * 1000 ? 60000 : 2000;
  }

  function refresh() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (progress) {
        if (progress && progress.status !== "sending" && !progress.recipients && LIVE.indexOf(progress.status) < 0) {
          window.location.reload();  // unscheduled or canceled before it went out: the editor shows what applies
          return;
        }
        if (progress) {
          if (progress.status !== box.dataset.status) showState(progress.status);
          if (progress.status !== "scheduled") showNumbers(progress);
          if (LIVE.indexOf(progress.status) < 0) return;  // paused, sent or canceled: nothing more will change
        }
        window.setTimeout(refresh, delay());
      })
      .catch(function () { window.setTimeout(refresh, 5000); });
  }

  if (LIVE.indexOf(box.dataset.status) >= 0) window.setTimeout(refresh, delay());
})();
