// Keeps an issue's sending progress current without reloading the page (templates/admin/_issue_progress.html).
(function () {
  "use strict";
  var box = document.getElementById("sending-progress");
  if (!box || box.dataset.status !== "sending") return;
  var bar = document.getElementById("sending-bar");

  function show(name, value) {
    var field = box.querySelector('[data-field="' + name + '"]');
    if (field) field.textContent = value;
  }

  function timeLeft(seconds) {
    if (seconds === null) return "estimating…";
    if (seconds < 60) return "less than a minute left";
    return "about " + Math.ceil(seconds / 60) + " min left";
  }

  function refresh() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (progress) {
        if (progress && progress.status !== "sending") {
          window.location.reload();  // paused, sent or canceled: the page shows the right buttons
          return;
        }
        if (progress) {
          bar.value = progress.percent_done;
          ["percent_done", "sent", "failed", "pending", "recipients", "skipped"].forEach(function (name) {
            show(name, progress[name]);
          });
          show("rate", progress.rate_per_second);
          show("time_left", timeLeft(progress.seconds_left));
        }
        window.setTimeout(refresh, 2000);
      })
      .catch(function () { window.setTimeout(refresh, 5000); });
  }

  window.setTimeout(refresh, 2000);
})();
