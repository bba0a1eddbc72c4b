// The issue editor (templates/admin/issue_edit.html): a live preview of the mail, a draft saved as she
// types and before any action that uses it (Send test, Schedule, Send now, Duplicate), a "saved"
// indicator, and a warning before leaving the page with changes not yet saved.
(function () {
  "use strict";
  var form = document.getElementById("issue-form");
  var frame = document.getElementById("preview");
  var previewState = document.getElementById("preview-state");
  var saveState = document.getElementById("save-state");
  var autosaveUrl = form.dataset.autosaveUrl;
  var previewTimer = null, saveTimer = null, previewSerial = 0;
  var edits = 0, savedEdits = 0, saving = null, leaving = false;

  document.querySelectorAll(".preview-switch button").forEach(function (button) {
    button.addEventListener("click", function () {
      frame.width = button.dataset.width;
      document.querySelectorAll(".preview-switch button").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
    });
  });

  function refreshPreview() {
    var mine = ++previewSerial;
    previewState.textContent = "Updating…";
    fetch(form.dataset.previewUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.text().then(function (body) { return [response.ok, body]; }); })
      .then(function (result) {
        if (mine !== previewSerial) return;
        if (result[0]) { frame.srcdoc = result[1]; previewState.textContent = "Preview up to date"; }
        else { previewState.textContent = result[1]; }
      })
      .catch(function () { previewState.textContent = "Preview unavailable"; });
  }

  function unsaved() { return autosaveUrl && edits !== savedEdits; }

  function showSaveState(text, isError) {
    if (!saveState) return;
    saveState.textContent = text;
    saveState.classList.toggle("error", Boolean(isError));
  }

  // Saves what is in the editor now; resolves true once saved (or nothing to save), false on a problem.
  function save() {
    if (!unsaved()) return Promise.resolve(true);
    if (saving) return saving.then(save);
    var upTo = edits;
    showSaveState("Saving…");
    saving = fetch(autosaveUrl, { method: "POST", body: new FormData(form), credentials: "same-origin",
                                  headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        if (!result.saved) { showSaveState("Not saved: " + result.error, true); return false; }
        savedEdits = upTo;
        showSaveState(unsaved() ? "Saving…" : "Saved at " + result.saved_at);
        return true;
      })
      .catch(function () { showSaveState("Not saved: the connection dropped. Your text is still here.", true); return false; })
      .then(function (ok) { saving = null; return ok; });
    return saving;
  }

  form.addEventListener("input", function () {
    edits += 1;
    if (autosaveUrl) showSaveState("Unsaved changes…");
    clearTimeout(previewTimer);
    previewTimer = setTimeout(refreshPreview, 500);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, 1500);
  });

  form.addEventListener("submit", function () { leaving = true; });  // the Save button posts everything

  // Send test, Schedule, Send now, Duplicate: save the draft first, so they use what is on screen.
  document.querySelectorAll("form.uses-draft").forEach(function (actionForm) {
    actionForm.addEventListener("submit", function (event) {
      if (!unsaved()) { leaving = true; return; }
      event.preventDefault();
      var button = event.submitter;
      clearTimeout(saveTimer);
      save().then(function (ok) {
        if (!ok) { saveState.scrollIntoView({ block: "center" }); return; }  // she sees why nothing happened
        leaving = true;
        actionForm.dataset.confirmed = "yes";  // she has answered any question already
        actionForm.requestSubmit(button);
      });
    });
  });

  window.addEventListener("beforeunload", function (event) {
    if (leaving || !unsaved()) return;
    event.preventDefault();
    event.returnValue = "";  // the browser asks "Leave site? Changes you made may not be saved."
  });
})();
