// The pages work without this script; it only adds the recovery codes' Copy button.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var codes = Array.prototype.map.call(source.querySelectorAll("code"), function (c) { return c.textContent; });
      navigator.clipboard.writeText(codes.join("\n") + "\n").then(function () {
        button.textContent = "Copied";
      }, function () {
        button.textContent = "Copy failed: select the codes instead";
      });
    });
  });
});
