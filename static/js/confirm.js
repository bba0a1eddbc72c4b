// Asks before a step that cannot be undone: a form or a button with data-confirm="question" (no inline handlers: CSP).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target, button = event.submitter;
    var question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
