// tracelink's dashboard is drawn on the server; this script only records what goes
// wrong in the page (script errors, failed loads, console.error) in
// window.tracelinkErrors, where the browser tests read it back.
(function () {
  "use strict";
  var errors = [];
  window.tracelinkErrors = errors;
  window.addEventListener(
    "error",
    function (e) {
      var t = e.target;
      if (t && t !== window && (t.src || t.href)) {
        errors.push("failed to load " + (t.src || t.href));
      } else {
        errors.push(String(e.message || e.error || "error"));
      }
    },
    true
  );
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + String(e.reason));
  });
  var original = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
