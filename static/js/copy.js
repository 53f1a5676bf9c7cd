// Copy buttons: <button data-copy-target="element-id" hidden>. The button stays
// hidden without JavaScript or a clipboard, where selecting the text still works.
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function setup(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target || !navigator.clipboard) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          button.textContent = button.getAttribute("data-copied-text") || "Copied";
          window.setTimeout(function () { button.textContent = label; }, 2000);
        },
        function () {
          selectText(target);  // the clipboard was refused: leave the text ready to copy
        }
      );
    });
  }

  document.querySelectorAll("[data-copy-target]").forEach(setup);
})();
