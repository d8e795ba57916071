// The flow editor: a click on a problem's line:col puts the cursor there in the text box.
// Without this script the link still jumps to the line in the numbered listing.
(function () {
  "use strict";
  // Each numbered listing opens at its first problem line.
  document.querySelectorAll(".listing-box").forEach(function (frame) {
    var first = frame.querySelector("li.has-problem");
    if (first) frame.scrollTop = Math.max(0, first.offsetTop - frame.offsetTop - 60);
  });
  var box = document.getElementById("source");
  if (!box) return;
  document.querySelectorAll(".problem-list a[data-line]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var line = parseInt(link.dataset.line, 10);
      var col = parseInt(link.dataset.col, 10) || 1;
      var lines = box.value.split("\n");
      if (!(line >= 1 && line <= lines.length)) return;
      event.preventDefault();
      var start = 0;
      for (var i = 0; i < line - 1; i++) start += lines[i].length + 1;
      var at = start + Math.min(col - 1, lines[line - 1].length);
      box.focus();
      box.setSelectionRange(at, start + lines[line - 1].length);
      var height = parseFloat(getComputedStyle(box).lineHeight) || 20;
      box.scrollTop = Math.max(0, (line - 4) * height);
      var row = document.getElementById("L" + line);
      if (row) {
        document.querySelectorAll(".listing li.picked").forEach(function (li) { li.classList.remove("picked"); });
        row.classList.add("picked");
        row.scrollIntoView({ block: "nearest" });
      }
    });
  });
})();
