/* Candor's first-party consent banner. Vanilla JavaScript, no build step.
   <script src="https://candor.example.com/consent.js" data-site-key="cnd_site_..." defer></script>
   Layer one: Accept all, Reject all, Choose - one style, one size, side by side. Layer two: one
   unticked checkbox per purpose. The dialog is modal (role=dialog, aria-modal), traps focus and
   is fully keyboard operable. Decisions are written for the Segment anonymousId (the
   ajs_anonymous_id cookie analytics.js uses) with the notice hash the server served as proof.
   Global Privacy Control is honoured and said so. Styles are set through the CSSOM, so a page
   whose CSP forbids inline style attributes still shows the banner. */
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me) return;
  var origin = new URL(me.src).origin;
  var siteKey = me.getAttribute('data-site-key') || '';
  var lang = (me.getAttribute('data-lang') || navigator.language || 'en').slice(0, 2);
  var gpc = navigator.globalPrivacyControl === true;
  var STORE = 'candor_consent';

  function anonymousId() {
    var m = document.cookie.match(/(?:^|;\s*)ajs_anonymous_id=([^;]*)/);
    if (m) {
      var v = decodeURIComponent(m[1]);
      try { v = JSON.parse(v); } catch (e) { /* analytics.js may store it unquoted */ }
      if (v) return String(v);
    }
    var id = (crypto.randomUUID && crypto.randomUUID()) ||
      String(Date.now()) + Math.random().toString(16).slice(2);
    document.cookie = 'ajs_anonymous_id=' + encodeURIComponent(JSON.stringify(id)) +
      '; path=/; max-age=31536000; SameSite=Lax';
    return id;
  }

  function el(tag, props, children) {
    var e = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === 'style') Object.assign(e.style, props.style);
      else if (k === 'text') e.textContent = props.text;
      else e.setAttribute(k, props[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }

  var BUTTON = { font: 'inherit', fontSize: '1rem', fontWeight: '600', minHeight: '2.75rem', minWidth: '9rem',
    padding: '0.5rem 1rem', border: '2px solid #0b4f9c', borderRadius: '0.375rem', background: '#0b4f9c',
    color: '#ffffff', cursor: 'pointer', flex: '1 1 9rem' };

  function show(cfg) {
    var previous = document.activeElement;
    var backdrop = el('div', { 'data-candor-banner': '', style: { position: 'fixed', inset: '0',
      background: 'rgba(0,0,0,0.45)', zIndex: '2147483647', display: 'flex', alignItems: 'flex-end',
      justifyContent: 'center', fontFamily: 'system-ui, sans-serif', lineHeight: '1.5' } });
    var dialog = el('div', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'candor-banner-title',
      'aria-describedby': 'candor-banner-body', tabindex: '-1', style: { background: '#ffffff', color: '#1b1f24',
      maxWidth: '40rem', width: '100%', maxHeight: '90vh', overflowY: 'auto', padding: '1.25rem',
      borderRadius: '0.5rem 0.5rem 0 0', boxSizing: 'border-box' } });
    dialog.appendChild(el('h2', { id: 'candor-banner-title', text: cfg.title, style: { fontSize: '1.25rem', margin: '0 0 0.5rem' } }));
    dialog.appendChild(el('p', { id: 'candor-banner-body', text: cfg.body, style: { margin: '0 0 1rem' } }));
    if (gpc) dialog.appendChild(el('p', { 'data-candor-gpc': '', role: 'note', text: cfg.gpc_honoured,
      style: { margin: '0 0 1rem', padding: '0.5rem 0.75rem', borderLeft: '4px solid #1e6b34', background: '#e9f5ec' } }));
    var row = el('div', { style: { display: 'flex', flexWrap: 'wrap', gap: '0.75rem' } });
    cfg.first_layer.forEach(function (b) {
      var btn = el('button', { type: 'button', 'data-action': b.action, text: b.label, style: BUTTON });
      btn.addEventListener('click', function () { act(b.action); });
      row.appendChild(btn);
    });
    dialog.appendChild(row);

    var second = el('form', { hidden: '', style: { marginTop: '1rem' } });
    var fieldset = el('fieldset', { style: { border: '1px solid #8a93a0', borderRadius: '0.5rem', padding: '0.75rem 1rem', margin: '0 0 1rem' } });
    fieldset.appendChild(el('legend', { text: cfg.title, style: { fontWeight: '700', padding: '0 0.25rem' } }));
    cfg.purposes.forEach(function (p) {
      var id = 'candor-purpose-' + p.id;
      var box = el('input', { type: 'checkbox', id: id, name: p.id, style: { width: '1.25rem', height: '1.25rem', margin: '0.2rem 0 0' } });
      box.checked = false; /* never pre-ticked */
      if (gpc && p.sale_or_sharing) box.disabled = true;
      var label = el('label', { for: id, style: { fontWeight: '600' } }, [document.createTextNode(p.title)]);
      var desc = el('p', { id: id + '-desc', text: p.description, style: { margin: '0', color: '#4a5360' } });
      box.setAttribute('aria-describedby', id + '-desc');
      fieldset.appendChild(el('div', { style: { display: 'flex', gap: '0.5rem', margin: '0.5rem 0' } },
        [box, el('div', {}, [label, desc])]));
    });
    second.appendChild(fieldset);
    second.appendChild(el('button', { type: 'submit', text: cfg.save, style: BUTTON }));
    second.addEventListener('submit', function (e) {
      e.preventDefault();
      decide(cfg.purposes.map(function (p) { return [p.id, second.elements[p.id].checked]; }));
    });
    dialog.appendChild(second);
    backdrop.appendChild(dialog);
    document.body.appendChild(backdrop);

    /* Focus stays inside the dialog while it is open. */
    function focusables() {
      return Array.prototype.filter.call(dialog.querySelectorAll('button, input, [href], [tabindex]:not([tabindex="-1"])'),
        function (x) { return !x.disabled && x.offsetParent !== null; });
    }
    dialog.addEventListener('keydown', function (e) {
      if (e.key !== 'Tab') return;
      var f = focusables(); if (!f.length) return;
      var first = f[0], last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    });
    document.addEventListener('focusin', function trap(e) {
      if (!document.body.contains(backdrop)) { document.removeEventListener('focusin', trap); return; }
      if (!dialog.contains(e.target)) focusables()[0].focus();
    });
    focusables()[0].focus();

    function act(action) {
      if (action === 'choose') { second.hidden = false; second.querySelector('input, button').focus(); return; }
      decide(cfg.purposes.map(function (p) { return [p.id, action === 'accept_all']; }));
    }
    function decide(choices) {
      var body = { anonymous_id: anonymousId(), lang: cfg.lang, notice_hash: cfg.notice_hash, gpc: gpc,
        consents: choices.map(function (c) { return { purpose: c[0], decision: c[1] ? 'granted' : 'denied' }; }) };
      fetch(origin + '/v1/banner/consents', { method: 'POST', headers: { 'Content-Type': 'application/json',
        Authorization: 'Bearer ' + siteKey }, body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
        .then(function (res) {
          if (!res[0]) throw new Error((res[1].error && res[1].error.message) || 'not recorded');
          try { localStorage.setItem(STORE, cfg.version); } catch (e) { /* private mode */ }
          backdrop.remove();
          if (previous && previous.focus) previous.focus();
          document.dispatchEvent(new CustomEvent('candor:consent', { detail: res[1] }));
        })
        .catch(function (err) { document.dispatchEvent(new CustomEvent('candor:error', { detail: String(err) })); });
    }
  }

  function start() {
    var answered = null;
    try { answered = localStorage.getItem(STORE); } catch (e) { /* private mode */ }
    fetch(origin + '/v1/banner/config?lang=' + encodeURIComponent(lang))
      .then(function (r) { return r.json(); })
      .then(function (cfg) { if (answered !== cfg.version && cfg.purposes.length) show(cfg); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
