// MathJax 3 settings for pymdownx.arithmatex in "generic" mode.
//
// arithmatex leaves each formula in the page as \( ... \) (inline) or \[ ... \]
// (display) inside an element of class "arithmatex"; MathJax is told to look only
// there, so dollar signs and backslashes elsewhere on a page are left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*",
    processHtmlClass: "arithmatex",
  },
};

// Material for MkDocs exposes `document$`, which emits whenever a page is shown
// (including page changes without a full reload); typeset the new content then.
if (typeof document$ !== "undefined") {
  document$.subscribe(function () {
    if (window.MathJax && window.MathJax.typesetPromise) {
      window.MathJax.startup.output.clearCache();
      window.MathJax.typesetClear();
      window.MathJax.texReset();
      window.MathJax.typesetPromise();
    }
  });
}
