// Small enhancements only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var menus = function () { return document.querySelectorAll("details.menu"); };

  // A row's menu floats beside its button, inside the window: below it when there is room,
  // else above; right-aligned with it, moved left or right to stay on screen.
  function place(menu) {
    var panel = menu.querySelector(".menu-panel");
    var button = menu.querySelector("summary");
    if (!panel || !button) return;
    var b = button.getBoundingClientRect();
    var w = panel.offsetWidth, h = panel.offsetHeight, gap = 6, edge = 8;
    var left = Math.min(Math.max(edge, b.right - w), window.innerWidth - w - edge);
    var top = b.bottom + gap + h <= window.innerHeight - edge ? b.bottom + gap : b.top - gap - h;
    panel.style.left = Math.max(edge, left) + "px";
    panel.style.top = Math.max(edge, top) + "px";
  }
  var rowMenus = function () { return document.querySelectorAll("details.row-menu"); };
  ["scroll", "resize"].forEach(function (name) {
    window.addEventListener(name, function () {
      rowMenus().forEach(function (m) { if (m.open) m.open = false; });
    }, true);
  });

  // One open menu at a time; Escape or a click elsewhere closes it.
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!(opened instanceof HTMLDetailsElement) || !opened.classList.contains("menu") || !opened.open) return;
    menus().forEach(function (m) { if (m !== opened) m.open = false; });
    if (opened.classList.contains("row-menu")) place(opened);
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

  // Links marked data-dialog open that <dialog> instead of navigating to the form page.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && typeof dialog.showModal === "function") {
        event.preventDefault();
        dialog.showModal();
        var first = dialog.querySelector("input:not([type=hidden]), select");
        if (first) first.focus();
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    var open = closer && closer.closest("dialog");
    if (open) {
      event.preventDefault();
      open.close();
    }
  });

  // Typing or picking a custom date chooses "Custom date" (the radio of Add key, the select of
  // Key details). Without this script, a date typed beside another choice is refused with a
  // message next to the field, and what was typed is kept.
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || field.name !== "custom_date" || !field.value) return;
    var form = field.form;
    if (!form) return;
    var radio = form.querySelector("input[name=validity][value=custom]");
    if (radio) radio.checked = true;
    var select = form.querySelector("select[name=validity]");
    if (select) select.value = "custom";
  });

  // Copy buttons: shown only when this script runs; without it the values stay selectable.
  function copy(text, button) {
    var status = document.querySelector(".copy-status");
    var done = function () {
      if (status) status.textContent = button.getAttribute("data-copied") || "Copied to the clipboard.";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the value stays selectable */ }
    document.body.removeChild(area);
  }
  document.querySelectorAll("[data-copy-from], [data-copy-text]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy-text");
      if (text === null) {
        var field = document.getElementById(button.getAttribute("data-copy-from"));
        text = field ? field.value : "";
      }
      copy(text, button);
    });
  });
})();
