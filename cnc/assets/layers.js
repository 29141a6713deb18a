/* Layers tab (cnc/ui/layers_table.py): draws each histogram cell from its compact code.
   A cell is <canvas class="hist" data-h="...">: per change category one character per bin (the
   segment's height, 0..units), categories separated by ','. Colours come from the table's
   data-colors (one per category) and data-base-color (the base model's column). Drawn when a
   cell appears or its code changes (paging reuses cells). */
(function() {
    var ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_';

    function draw(canvas) {
        var code = canvas.getAttribute('data-h');
        var ctx = canvas.getContext && canvas.getContext('2d');
        if (!ctx) { return; }
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        if (code === null) { return; }
        var table = canvas.closest('table');
        var colors = ((table && table.getAttribute('data-colors')) || '').split(',');
        var units = +((table && table.getAttribute('data-units')) || 60);
        var base = canvas.classList.contains('is-base') && table ? table.getAttribute('data-base-color') : null;
        var parts = code.split(','), bins = 0, c, k;
        for (c = 0; c < parts.length; c++) { bins = Math.max(bins, parts[c].length); }
        var w = canvas.width, hgt = canvas.height, bw = bins ? w / bins : w, sy = (hgt - 1) / units;
        var acc = new Array(bins).fill(0);
        for (c = 0; c < parts.length; c++) {
            var p = parts[c];
            if (!p) { continue; }
            ctx.fillStyle = base || colors[c] || '#999';
            for (k = 0; k < p.length; k++) {
                var v = ALPHABET.indexOf(p[k]);
                if (v <= 0) { continue; }
                ctx.fillRect(k * bw, hgt - 1 - (acc[k] + v) * sy, Math.max(1, bw * 0.86), v * sy);
                acc[k] += v;
            }
        }
        ctx.fillStyle = '#c8ced6';
        ctx.fillRect(0, hgt - 1, w, 1);  // baseline
    }

    function scan(root) {
        if (root.matches && root.matches('canvas.hist[data-h]')) { draw(root); }
        if (root.querySelectorAll) { root.querySelectorAll('canvas.hist[data-h]').forEach(draw); }
    }

    function start() {
        new MutationObserver(function(records) {
            records.forEach(function(r) {
                if (r.type === 'attributes') { if (r.target.matches('canvas.hist')) { draw(r.target); } return; }
                r.addedNodes.forEach(scan);
            });
        }).observe(document.body, {childList: true, subtree: true, attributes: true,
                                   attributeFilter: ['data-h', 'class']});
        scan(document.body);
    }

    if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
