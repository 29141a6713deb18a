/* Selection Details' metric table, drawn from the compact rows of cnc/ui/selection_table.py
   (table_data): returns Dash component objects, so React renders it like any other layout. */
(function() {
    function el(type, props) { return {type: type, namespace: 'dash_html_components', props: props}; }

    function selectionTable(data) {
        if (!data || !data.rows) { return null; }
        var cols = data.columns, missing = data.missing;
        var head = [el('Th', {children: 'Model'})].concat(cols.map(function(c) {
            return el('Th', {children: c[0], title: c[1],
                             className: c[2] === 'var' ? 'var-col' : (c[2] === 'current' ? 'current' : undefined)});
        }));
        var body = data.rows.map(function(r, i) {
            var label = r[0], id = r[1];
            var cells = [el('Th', {children: label, title: label === id ? id : label + ' (' + id + ')'})];
            for (var k = 0; k < cols.length; k++) {
                var text = r[3 + k], kind = cols[k][2], cls = [];
                if (kind === 'var') { cls.push('var-col'); }
                if (kind === 'current') { cls.push('current'); }
                if (kind !== 'var' && text === missing) { cls.push('missing'); }
                cells.push(el('Td', {children: text, className: cls.length ? cls.join(' ') : undefined}));
            }
            return el('Tr', {children: cells, key: String(i), className: r[2] ? undefined : 'not-charted'});
        });
        return el('Div', {className: 'sd-table-box', children: [
            el('Table', {className: 'model-table sd-table', children: [
                el('Thead', {children: el('Tr', {children: head})}), el('Tbody', {children: body})]})
        ].concat(data.notes.map(function(n) { return el('Div', {className: 'hint', children: n}); }))});
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside);
    window.dash_clientside.cncSelection = {table: selectionTable};
})();
