// Task playground: show the chosen image on a canvas, and draw a detector's boxes on it after each answer.
(function () {
  "use strict";
  let image = null;

  function canvas() { return document.getElementById("task-canvas"); }

  function draw(detections) {
    const c = canvas();
    if (!c || !image) return;
    c.width = image.naturalWidth;
    c.height = image.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(image, 0, 0);
    const line = Math.max(2, Math.round(Math.min(c.width, c.height) / 150));
    ctx.lineWidth = line;
    ctx.font = `${Math.max(12, line * 6)}px sans-serif`;
    ctx.textBaseline = "bottom";
    for (const d of detections || []) {
      const b = d.box;
      ctx.strokeStyle = "#e4572e";
      ctx.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
      const text = `${d.label} ${d.score.toFixed(2)}`;
      const width = ctx.measureText(text).width + 2 * line;
      const height = Math.max(12, line * 6) + line;
      const top = b.y1 > height ? b.y1 - height : b.y1;
      ctx.fillStyle = "#e4572e";
      ctx.fillRect(b.x1, top, width, height);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, b.x1 + line, top + height);
    }
    c.dataset.boxes = String((detections || []).length);
  }

  document.addEventListener("change", (event) => {
    if (event.target.id !== "task-image" || !event.target.files.length) return;
    const reader = new FileReader();  // a data: URL keeps the image on this page (no blob: fetch)
    reader.onload = () => {
      const next = new Image();
      next.onload = () => { image = next; draw([]); };
      next.onerror = () => { image = null; };
      next.src = reader.result;
    };
    reader.readAsDataURL(event.target.files[0]);
  });

  document.addEventListener("htmx:afterSwap", () => {
    const found = document.querySelector("#result .detections");
    draw(found ? JSON.parse(found.dataset.detections) : []);
  });
})();
