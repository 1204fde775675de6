// Small enhancements only: every page works without this file.
(function () {
  "use strict";
  var menus = function () { return document.querySelectorAll("details.menu"); };

  // One open menu at a time; Escape or a click elsewhere closes it.
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!(opened instanceof HTMLDetailsElement) || !opened.classList.contains("menu") || !opened.open) return;
    menus().forEach(function (m) { if (m !== opened) m.open = false; });
  }, true);

  document.addEventListener("click", function (event) {
    menus().forEach(function (m) { if (m.open && !m.contains(event.target)) m.open = false; });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    menus().forEach(function (m) {
      if (m.open) {
        m.open = false;
        var summary = m.querySelector("summary");
        if (summary) summary.focus();
      }
    });
  });
})();
