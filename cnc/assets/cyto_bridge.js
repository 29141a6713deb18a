/* The one place that touches dash-cytoscape's internals (checked against dash-cytoscape 1.0.x,
   cytoscape 3.28): the container's id (the component's) and private `_cyreg.cy` (the live cytoscape
   instance; dash-cytoscape has no public prop or event for it) and the renderer's
   `invalidateContainerClientCoordsCache`.
   When a new dash-cytoscape moves either, `cncCyto.get` reports it once, in the console and over
   the map, and the map keeps working without the extras (tooltip placement, selection sync, view). */
(function() {
    var reported = false;

    /* Cytoscape 3.28's bounding-box cache check reads `isEdge && isDirty(source) || isDirty(target)`
       (precedence: the target test also runs for nodes), and a node's `target()` is an empty
       collection without a cache: every node's box is recomputed on every frame, 30-50 ms per
       frame at 5,000 models whatever changed. A node's empty `target()` is given a (never read)
       cache mark, so that nodes use their cache as intended; it is invalidated as before (a
       position or a bounds-changing style dirties it). Edges are unchanged. */
    function fixNodeBoxCache(cy) {
        var proto = Object.getPrototypeOf(cy.collection());
        if (!proto || proto._cncBoxFix || typeof proto.target !== 'function') { return; }
        var target = proto.target;
        proto.target = function() {
            var out = target.apply(this, arguments);
            if (this.length === 1 && out.length === 0 && out._private && this[0].isNode()) { out._private.bbCache = true; }
            return out;
        };
        proto._cncBoxFix = true;
    }

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
            if (reg && reg.cy) {
                fixNodeBoxCache(reg.cy);
                return reg.cy;
            }
            // rendered (cytoscape drew its canvases) but no registry: the internals moved
            if (box.querySelector('canvas')) { report(box, 'the container registry `_cyreg.cy`'); }
            return null;
        },
        /* The Dash id of the component a cytoscape instance draws (dash-cytoscape renders its
           container with the id, a pattern-matching id as its JSON), for dash_clientside.set_props. */
        componentId: function(cy) {
            var id = cy.container().id;
            return id.charAt(0) === '{' ? JSON.parse(id) : id;
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
