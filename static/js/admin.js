// Admin pages: ask before an action that can't be taken back. A form or its button carries the
// question in data-confirm (no inline handlers: the Content-Security-Policy allows only files).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target, button = event.submitter;
    if (form.dataset.confirmed === "yes") {  // asked already, before the draft was saved
      delete form.dataset.confirmed;
      return;
    }
    var question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
