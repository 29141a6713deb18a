/* Keyboard access for Dash's tabs (dcc.Tab renders plain divs): each tab becomes focusable with
   the tab role, and Enter or Space opens it. Runs on every DOM change, as pages re-render. */
(function () {
  function enhance(root) {
    root.querySelectorAll('.tab:not([tabindex])').forEach(function (tab) {
      tab.setAttribute('tabindex', '0');
      tab.setAttribute('role', 'tab');
    });
    root.querySelectorAll('.tab').forEach(function (tab) {
      var selected = tab.classList.contains('tab--selected') ? 'true' : 'false';
      if (tab.getAttribute('aria-selected') !== selected) { tab.setAttribute('aria-selected', selected); }
    });
  }
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if ((e.key === 'Enter' || e.key === ' ') && t && t.classList && t.classList.contains('tab')) {
      e.preventDefault();
      t.click();
    }
  });
  new MutationObserver(function () { enhance(document); })
    .observe(document.documentElement, {childList: true, subtree: true, attributes: true, attributeFilter: ['class']});
})();
