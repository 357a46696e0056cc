// MathJax for the course's formulas (pymdownx.arithmatex, generic mode, wraps them in
// <span class="arithmatex">\( ... \)</span>). Loaded by mkdocs.yml's extra_javascript, before
// MathJax itself; re-typesets after Material's instant navigation swaps a page in.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

document$.subscribe(() => {
  if (window.MathJax && MathJax.typesetPromise) {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  }
});
