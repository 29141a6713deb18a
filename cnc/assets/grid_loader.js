/* Stands in for dash_ag_grid.AgGrid until AG Grid's script is loaded (cnc/app/lazy_grid.py): the
   first grid that mounts fetches it, then renders the real grid with the same props; the Overview
   fetches it in idle time once drawn, so Compare opens without the wait. */
(function() {
    if (!window.cncGridSrc || window.dash_ag_grid) { return; }
    var stub = {}, loading = null;
    function load() {
        if (!loading) {
            loading = new Promise(function(resolve, reject) {
                var s = document.createElement('script');
                s.src = window.cncGridSrc;
                s.onload = resolve;
                s.onerror = function() { loading = null; reject(new Error('could not load ' + s.src)); };
                document.head.appendChild(s);
            });
        }
        return loading;
    }
    function ready() { return window.dash_ag_grid && window.dash_ag_grid !== stub; }
    stub.AgGrid = function LazyAgGrid(props) {
        var React = window.React;
        var state = React.useState(ready() ? 'ready' : 'loading');
        React.useEffect(function() {
            if (state[0] === 'ready') { return; }
            load().then(function() { state[1]('ready'); }, function(e) { state[1](String(e.message)); });
        }, []);
        if (state[0] === 'ready' && ready()) { return React.createElement(window.dash_ag_grid.AgGrid, props); }
        return React.createElement('div', {className: 'grid-loading', style: props.style},
                                   state[0] === 'loading' ? 'Loading the table…' : state[0]);
    };
    window.dash_ag_grid = stub;
    window.addEventListener('load', function() {
        setTimeout(function() {
            (window.requestIdleCallback || function(fn) { setTimeout(fn, 0); })(function() { load().catch(function() {}); });
        }, 3000);
    });
})();
