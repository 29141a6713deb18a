/* The colour and size encodings and the filters' passing set, computed in the browser from the
   VALUES store (cnc/ui/legend.py `values_data`: each model's metric values, each metric's data
   range and direction, the palette). The rules are cnc.analysis.encoding's and
   cnc.analysis.filters' (Python rounds half to even: so does `halfEven`), so the map and the
   scatterplot show what the server would have sent; tests/test_overview_encoding_browser.py
   compares them. Results are memoized per VALUES object (a new experiment is a new object), so
   the map and the scatterplot share one computation and unchanged inputs give the same arrays. */
(function() {
    var memo = new WeakMap();

    function cached(vals, key, fn) {
        var m = memo.get(vals);
        if (!m) { m = new Map(); memo.set(vals, m); }
        if (!m.has(key)) { m.set(key, fn()); }
        return m.get(key);
    }

    function halfEven(x) {
        var f = Math.floor(x), d = x - f;
        if (d !== 0.5) { return d < 0.5 ? f : f + 1; }
        return f % 2 === 0 ? f : f + 1;
    }

    /* Python's round(x, 1): the exact decimal value, ties (x.x25, x.x75 are exact) to even. */
    function round1(x) {
        if (x * 4 === Math.floor(x * 4) && x * 2 !== Math.floor(x * 2)) { return halfEven(x * 10) / 10; }
        return Number(x.toFixed(1));
    }

    function scale(vals, metric) {
        var s = Object.prototype.hasOwnProperty.call(vals.metrics, metric) ? vals.metrics[metric] : null;
        return s && s.lo !== null ? s : null;
    }

    function fraction(s, v) { return s.hi === s.lo ? 0.5 : (v - s.lo) / (s.hi - s.lo); }

    /* One colour per model: better is brighter, missing is grey. */
    function colours(vals, metric) {
        return cached(vals, 'c\u0000' + metric, function() {
            var s = scale(vals, metric), levels = vals.palette.length - 1;
            if (!s) { return new Array(vals.n).fill(vals.none); }
            return vals.v[metric].map(function(v) {
                if (v === null) { return vals.missing; }
                var t = fraction(s, v);
                return vals.palette[halfEven(Math.min(1, Math.max(0, s.hib ? t : 1 - t)) * levels)];
            });
        });
    }

    /* One size per model in [lo, hi] px; a missing value gets the middle size. */
    function sizes(vals, metric, lo, hi) {
        return cached(vals, 's\u0000' + lo + '\u0000' + hi + '\u0000' + metric, function() {
            var s = scale(vals, metric);
            if (!s) { return new Array(vals.n).fill((lo + hi) / 2); }
            var middle = round1((lo + hi) / 2);
            return vals.v[metric].map(function(v) {
                return v === null ? middle : round1(lo + (hi - lo) * Math.min(1, Math.max(0, fraction(s, v))));
            });
        });
    }

    /* Models drawn hollow (no size value): {flags: per model, list: their indices}. */
    function hollow(vals, metric) {
        return cached(vals, 'm\u0000' + metric, function() {
            var s = scale(vals, metric), flags = new Array(vals.n).fill(false), list = [];
            if (s) {
                vals.v[metric].forEach(function(v, i) { if (v === null) { flags[i] = true; list.push(i); } });
            }
            return {flags: flags, list: list};
        });
    }

    /* The active filters of a filters list ([[metric, lo, hi], ...]), as the server reads them:
       known metrics, the first of each, at most 20, with a bound. */
    function active(vals, filters) {
        var seen = {}, out = [];
        (Array.isArray(filters) ? filters : []).slice(0, 20).forEach(function(f) {
            if (!Array.isArray(f) || f.length !== 3 || typeof f[0] !== 'string' || seen[f[0]] ||
                !Object.prototype.hasOwnProperty.call(vals.v, f[0])) { return; }
            seen[f[0]] = true;
            var lo = typeof f[1] === 'number' ? f[1] : null, hi = typeof f[2] === 'number' ? f[2] : null;
            if (lo !== null || hi !== null) { out.push([f[0], lo, hi]); }
        });
        return out;
    }

    /* Who passes every filter: {ok: per model, off: indices failing, ids: passing model ids}. A
       missing value never passes. */
    function passing(vals, filters) {
        var act = active(vals, filters);
        return cached(vals, 'p\u0000' + JSON.stringify(act), function() {
            var n = vals.n, ok = new Array(n).fill(true), off = [], ids = [], i;
            act.forEach(function(f) {
                var v = vals.v[f[0]], lo = f[1], hi = f[2];
                for (i = 0; i < n; i++) {
                    if (ok[i] && (v[i] === null || (lo !== null && v[i] < lo) || (hi !== null && v[i] > hi))) { ok[i] = false; }
                }
            });
            for (i = 0; i < n; i++) { if (ok[i]) { ids.push(vals.ids[i]); } else { off.push(i); } }
            return {ok: ok, off: off, ids: ids};
        });
    }

    /* Model id -> index (experiment order). */
    function index(vals) {
        return cached(vals, 'index', function() {
            var out = new Map();
            vals.ids.forEach(function(id, i) { out.set(id, i); });
            return out;
        });
    }

    window.cncEncode = {colours: colours, sizes: sizes, hollow: hollow, passing: passing, index: index,
                        scale: scale};
})();
