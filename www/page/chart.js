// The training chart: loss (left axis) and training accuracy (right axis, 0–100 %) per
// optimiser step. Drawn on a canvas from the history; nothing else.
const COLORS = { loss: "#d6455d", accuracy: "#2456d6" };

/** Size a canvas's pixels to its box (and the screen's pixel ratio), cleared: { g, width, height }
 * in CSS pixels. */
export function fitCanvas(canvas, fallbackWidth, fallbackHeight) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || fallbackWidth;
  const height = canvas.clientHeight || fallbackHeight;
  // Setting a canvas's size allocates it again, even to the same size: only when it changed.
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  return { g, width, height };
}

export function drawChart(canvas, history) {
  const steps = Math.max(2, history.length);
  const { g, width, height } = fitCanvas(canvas, 560, 220);
  const pad = { left: 44, right: 44, top: 10, bottom: 26 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const maxLoss = Math.max(0.1, ...history.map((r) => r.loss));
  const x = (step) => pad.left + (w * (step - 1)) / (steps - 1);
  const yLoss = (v) => pad.top + h * (1 - v / maxLoss);
  const yAcc = (v) => pad.top + h * (1 - v);

  g.strokeStyle = "#d9dde3";
  g.fillStyle = "#5b6470";
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + (h * i) / 4;
    g.beginPath();
    g.moveTo(pad.left, y);
    g.lineTo(pad.left + w, y);
    g.stroke();
    g.textAlign = "right";
    g.fillText((maxLoss * (1 - i / 4)).toFixed(2), pad.left - 6, y + 4);
    g.textAlign = "left";
    g.fillText(`${100 - i * 25} %`, pad.left + w + 6, y + 4);
  }
  g.textAlign = "center";
  g.fillText(`optimiser step (${history.length})`, pad.left + w / 2, height - 6);

  const line = (key, y, color) => {
    const points = history.filter((r) => r[key] != null);
    if (points.length === 0) return;
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((r, i) => (i ? g.lineTo(x(r.step), y(r[key])) : g.moveTo(x(r.step), y(r[key]))));
    if (points.length === 1) g.arc(x(points[0].step), y(points[0][key]), 2, 0, 7);
    g.stroke();
  };
  line("loss", yLoss, COLORS.loss);
  line("trainAccuracy", yAcc, COLORS.accuracy);
}

export const LEGEND =
  "Red: loss (left) · Blue: accuracy on the training photos (right). How it does on new photos is measured after training, by cross-validation.";
