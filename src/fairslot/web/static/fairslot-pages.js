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
/* The payment deadline counts down on "my bookings" (the server's deadline is what counts;
 * this only shows the minutes left by the browser's clock). */
(function () {
  "use strict";
  var marks = document.querySelectorAll("[data-countdown]");
  if (!marks.length) { return; }
  function tick() {
    Array.prototype.forEach.call(marks, function (mark) {
      var left = Math.max(0, Date.parse(mark.getAttribute("data-countdown")) - Date.now());
      var minutes = Math.floor(left / 60000);
      var seconds = Math.floor((left % 60000) / 1000);
      mark.textContent = "(" + minutes + ":" + (seconds < 10 ? "0" : "") + seconds + " " +
        mark.getAttribute("data-left-label") + ")";
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();
/* A form marked data-fairslot-confirm asks before it is sent (cancelling a booking cannot be
 * undone: the slot goes to the next patient). Without JavaScript the form is sent as it is. */
(function () {
  "use strict";
  function wire() {
    var forms = document.querySelectorAll("form[data-fairslot-confirm]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        if (form.hasAttribute("data-fairslot-autosubmit")) { return; }
        // data-fairslot-confirm-when names a checkbox: ask only when it is ticked now and
        // was not when the page came (disabling a staff account, not saving its role).
        var when = form.getAttribute("data-fairslot-confirm-when");
        if (when) {
          var box = form.elements.namedItem(when);
          if (!box || !box.checked || box.defaultChecked) { return; }
        }
        if (!window.confirm(form.getAttribute("data-fairslot-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
