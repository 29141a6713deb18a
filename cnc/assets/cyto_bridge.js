/* The one place that touches dash-cytoscape's internals (checked against dash-cytoscape 1.0.x,
   cytoscape 3.28): the container's private `_cyreg.cy` (the live cytoscape instance; dash-cytoscape
   has no public prop or event for it) and the renderer's `invalidateContainerClientCoordsCache`.
   When a new dash-cytoscape moves either, `cncCyto.get` reports it once, in the console and over
   the map, and the map keeps working without the extras (tooltip placement, selection sync, view). */
(function() {
    var reported = false;

    function report(box, what) {
        if (reported) { return; }
        reported = true;
        var wrap = box.closest('.map-box');
        var found = wrap ? wrap.getAttribute('data-cyto-version') : '?';
        var tested = wrap ? wrap.getAttribute('data-cyto-tested') : '?';
        var msg = 'Compress and Compare: dash-cytoscape ' + found + ' no longer provides ' + what +
            ' (checked against ' + tested + '.x); map selection sync, tooltips and fitting are off. ' +
            'Update assets/cyto_bridge.js or pin dash-cytoscape ' + tested + '.*.';
        console.error(msg);
        if (wrap) {
            var note = document.createElement('div');
            note.className = 'map-bridge-error';
            note.textContent = msg;
            wrap.appendChild(note);
        }
    }

    window.cncCyto = {
        /* The cytoscape instance of the map box, or null while it is not rendered yet. */
        get: function(cls) {
            var box = document.querySelector('.' + cls);
            if (!box) { return null; }
            var reg = box._cyreg;
            if (reg && reg.cy) { return reg.cy; }
            // rendered (cytoscape drew its canvases) but no registry: the internals moved
            if (box.querySelector('canvas')) { report(box, 'the container registry `_cyreg.cy`'); }
            return null;
        },
        /* Cytoscape caches its container's page position and refreshes it only on scroll/resize,
           so content shifting above the map would make clicks hit the wrong node. */
        refreshCoords: function(cy) {
            var r = cy.renderer && cy.renderer();
            if (r && typeof r.invalidateContainerClientCoordsCache === 'function') {
                r.invalidateContainerClientCoordsCache();
            } else {
                report(cy.container(), 'renderer().invalidateContainerClientCoordsCache');
            }
        }
    };
})();
