// Measures the HTML timeline as Chromium laid it out, for the browser tests (tests/browser.py
// injects this file into a copy of the page and reads the JSON it leaves in #probe-out).
// Boxes are in CSS pixels of the viewport (getBoundingClientRect), so they compare across rows
// and with the page's HTML; colours are computed styles, resolved to what is painted behind
// each text: a pattern stands for each colour it paints, translucent fills are composited.
(() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const svg = document.querySelector("svg.timeline");
  const scale = svg.getScreenCTM().a;

  const paints = (value) => {
    const ref = /url\("?#([^")]+)"?\)/.exec(value);
    if (!ref) return [value];
    return [...document.getElementById(ref[1]).querySelectorAll("rect")].map((r) => r.getAttribute("fill"));
  };
  // The paint layers under (x, y), top first, down to the first opaque one, leaving out `self`.
  const layers = (x, y, self) => {
    const found = [];
    for (const el of document.elementsFromPoint(x, y)) {
      if (el === self || el.closest("text") || el.tagName === "svg" || el.tagName === "g") continue;
      const style = getComputedStyle(el);
      if (el instanceof SVGGeometryElement) {
        const stroked = el.tagName === "line" || el.tagName === "path";
        const alpha = Number(stroked ? style.strokeOpacity : style.fillOpacity) * Number(style.opacity);
        found.push({ paints: paints(stroked ? style.stroke : style.fill), alpha });
        if (alpha >= 1 && !stroked) return found;
      } else if (style.backgroundColor !== "rgba(0, 0, 0, 0)") {
        found.push({ paints: [style.backgroundColor], alpha: 1 });
        return found;
      }
    }
    found.push({ paints: ["rgb(255, 255, 255)"], alpha: 1 }); // the canvas
    return found;
  };
  const samples = (b) => {
    const inset = (lo, hi) => [lo + Math.min(2, (hi - lo) / 4), (lo + hi) / 2, hi - Math.min(2, (hi - lo) / 4)];
    const xs = inset(b[0], b[2]);
    const ys = inset(b[1], b[3]);
    return xs.flatMap((x) => ys.map((y) => [x, y]));
  };

  const owner = (el) => {
    const bar = el.closest("g.bar");
    const row = el.closest("g.row");
    const rows = [...document.querySelectorAll("g.row")];
    const bars = [...document.querySelectorAll("g.bar")];
    return { bar: bar ? bars.indexOf(bar) : -1, row: row ? rows.indexOf(row) : -1 };
  };

  const texts = [...document.querySelectorAll("svg.timeline text")].map((el) => {
    const style = getComputedStyle(el);
    const b = box(el);
    const halo = style.paintOrder.startsWith("stroke") && style.stroke !== "none" && parseFloat(style.strokeWidth) >= 2;
    return {
      cls: el.getAttribute("class") || "",
      text: el.childNodes[0] ? el.childNodes[0].textContent : "",
      title: el.querySelector("title") ? el.querySelector("title").textContent : null,
      box: b,
      px: parseFloat(style.fontSize) * scale,
      colour: style.fill,
      halo: halo ? style.stroke : null,
      behind: samples(b).map(([x, y]) => layers(x, y, el)),
      ...owner(el),
    };
  });
  const html = [...document.querySelectorAll("h1, p, li, time")].map((el) => {
    const style = getComputedStyle(el);
    let back = el;
    while (back && getComputedStyle(back).backgroundColor === "rgba(0, 0, 0, 0)") back = back.parentElement;
    return {
      tag: el.tagName.toLowerCase(),
      text: el.textContent,
      box: box(el),
      px: parseFloat(style.fontSize),
      colour: style.color,
      background: back ? getComputedStyle(back).backgroundColor : "rgb(255, 255, 255)",
    };
  });
  const bars = [...document.querySelectorAll("g.bar")].map((el) => ({
    source: el.dataset.source,
    kind: el.getAttribute("class").split(" ")[2],
    box: box(el.querySelector("rect")),
    title: el.querySelector(":scope > title").textContent,
    ...owner(el),
  }));
  const point = (el, x, y) => {
    const p = svg.createSVGPoint();
    p.x = x;
    p.y = y;
    const q = p.matrixTransform(el.getScreenCTM());
    return [q.x, q.y];
  };
  const leaders = [...document.querySelectorAll("path.leader")].map((el) => {
    const [, x, y, y2, x2] = /M([\d.]+) ([\d.]+)V([\d.]+)H([\d.]+)/.exec(el.getAttribute("d")).map(Number);
    return { points: [point(el, x, y), point(el, x, y2), point(el, x2, y2)], ...owner(el) };
  });
  const at = document.querySelector("line.at");
  const rows = [...document.querySelectorAll("g.row")].map((el) => ({ task: el.dataset.task, box: box(el) }));
  const root = document.documentElement;
  const out = document.createElement("script");
  out.type = "application/json";
  out.id = "probe-out";
  out.textContent = JSON.stringify({
    viewport: { inner: window.innerWidth, client: root.clientWidth, scroll: root.scrollWidth },
    svg: box(svg),
    texts,
    html,
    bars,
    leaders,
    at: box(at),
    rows,
  });
  document.body.appendChild(out);
})();
