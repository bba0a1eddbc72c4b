// The issue editor's live preview and phone/desktop switch (templates/admin/issue_edit.html).
(function () {
  var form = document.getElementById("issue-form"), frame = document.getElementById("preview");
  var state = document.getElementById("preview-state"), timer = null, serial = 0;
  document.querySelectorAll(".preview-switch button").forEach(function (button) {
    button.addEventListener("click", function () {
      frame.width = button.dataset.width;
      document.querySelectorAll(".preview-switch button").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
    });
  });
  function refresh() {
    var mine = ++serial;
    state.textContent = "Updating…";
    fetch(form.dataset.previewUrl, {method: "POST", body: new FormData(form), credentials: "same-origin"})
      .then(function (response) { return response.text().then(function (body) { return [response.ok, body]; }); })
      .then(function (result) {
        if (mine !== serial) return;
        if (result[0]) { frame.srcdoc = result[1]; state.textContent = "Preview up to date (not saved yet)"; }
        else { state.textContent = result[1]; }
      })
      .catch(function () { state.textContent = "Preview unavailable"; });
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 500); });
})();
