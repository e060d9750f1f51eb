// Run in the page by tests/helpers/browser.py: what makes it hard to use at phone width, without a mouse or with
// poor eyesight. Returns {overflow, unlabelled, unnamedButtons, lowContrast}.
() => {
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const problems = {overflow: null, unlabelled: [], unnamedButtons: [], lowContrast: []};
  const se = document.scrollingElement;
  if (se.scrollWidth > innerWidth) {
    const wide = [...document.querySelectorAll('body *')].filter(el => el.getBoundingClientRect().right > innerWidth + 1
      && !el.closest('.table-wrap, pre')).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''));
    problems.overflow = {scrollWidth: se.scrollWidth, innerWidth, wide: wide.slice(0, 5)};
  }
  const text = id => (document.getElementById(id) || {}).textContent || '';
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const label = [...(el.labels || [])].map(l => l.textContent).join(' ') || el.getAttribute('aria-label')
      || (el.getAttribute('aria-labelledby') || '').split(' ').map(text).join(' ');
    if (!label.trim()) problems.unlabelled.push(el.outerHTML.slice(0, 100));
  }
  for (const el of document.querySelectorAll('button, [role=button]')) {
    if (!(el.textContent.trim() || el.getAttribute('aria-label'))) problems.unnamedButtons.push(el.outerHTML.slice(0, 100));
  }
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                               if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el) || el.closest('[disabled], canvas, svg, .u-legend')) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < needed) problems.lowContrast.push(`${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return problems;
}
