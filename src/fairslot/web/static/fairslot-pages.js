/*
 * fairslot pages: a form the guard answered with a proof-of-work challenge comes back
 * marked data-fairslot-autosubmit; submit it again at once, so altcha-solver.js (loaded
 * before this file) solves the challenge and resends without another click.
 */
(function () {
  "use strict";
  function resubmit() {
    var forms = document.querySelectorAll("form[data-fairslot-autosubmit]");
    Array.prototype.forEach.call(forms, function (form) {
      if (typeof form.requestSubmit === "function") {
        form.requestSubmit();
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", resubmit);
  } else {
    resubmit();
  }
})();
/* The desk's receipt: a print button (inline handlers are not allowed by the CSP). */
(function () {
  "use strict";
  function wire() {
    var buttons = document.querySelectorAll("[data-fairslot-print]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
/* A page that follows a background job reloads itself every few seconds until it is done. */
(function () {
  "use strict";
  var marked = document.querySelector("[data-fairslot-refresh]");
  if (marked) {
    var seconds = Number(marked.getAttribute("data-fairslot-refresh")) || 2;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
})();
