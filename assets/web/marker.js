// Confab's frame marker in the browser (the same format as src/engine/media/synthetic_video.rs):
// two bands (top and bottom) of 40x2 black/white blocks carrying the frame number, the low 32
// bits of the capture time in microseconds and a CRC-16/CCITT-FALSE, big-endian, MSB first.
//
// - `patternTrack()`: a "Test pattern" camera drawn on a canvas, whose markers carry the
//   wall-clock capture time (performance.timeOrigin + now), so a native peer on the same machine
//   started with `confab join --wall-clock-markers` measures capture→decoded latency.
// - `MarkerProbe`: reads the markers a native peer's test pattern carries from the video as it is
//   shown here, and records (render wall time − marker time) mod 2^32 for each new frame. Native
//   markers are on the native process's media clock; `confab join` reports that clock's offset
//   to the wall clock (`media_clock_offset_us`), which turns these into latencies.

const COLUMNS = 40;
const ROWS = 2;
const BITS = COLUMNS * ROWS;

/** Wall-clock microseconds, low 32 bits. */
export function wallMicrosLow32() {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return Number(BigInt(us) & 0xffffffffn);
}

function crc16(bytes) {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

function geometry(width, height) {
  const block = Math.floor(width / COLUMNS) & ~1;
  if (block < 4 || height < 4 * ROWS * block) return null;
  return {
    block,
    x0: Math.floor((width - COLUMNS * block) / 2) & ~1,
    bands: [0, (height - ROWS * block) & ~1],
  };
}

function toBits(frameNumber, captureLow) {
  const bytes = new Uint8Array(10);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, frameNumber >>> 0);
  view.setUint32(4, captureLow >>> 0);
  view.setUint16(8, crc16(bytes.subarray(0, 8)));
  const bits = new Array(BITS);
  for (let i = 0; i < BITS; i++) bits[i] = (bytes[i >> 3] & (0x80 >> (i % 8))) !== 0;
  return bits;
}

/** Draws a marker into both bands of a 2D canvas context. */
export function drawMarker(ctx, width, height, frameNumber, captureLow) {
  const g = geometry(width, height);
  if (!g) return;
  const bits = toBits(frameNumber, captureLow);
  for (const y0 of g.bands) {
    for (let i = 0; i < BITS; i++) {
      ctx.fillStyle = bits[i] ? "rgb(220,220,220)" : "rgb(30,30,30)";
      ctx.fillRect(g.x0 + (i % COLUMNS) * g.block, y0 + Math.floor(i / COLUMNS) * g.block, g.block, g.block);
    }
  }
}

/** Reads a marker from RGBA pixels; {frameNumber, captureLow} or null if neither band is intact. */
export function readMarker(rgba, width, height) {
  const g = geometry(width, height);
  if (!g) return null;
  const n = g.block / 2;
  for (const y0 of g.bands) {
    const bytes = new Uint8Array(10);
    for (let i = 0; i < BITS; i++) {
      // The inner half of each block: edges carry the codec's ringing.
      const bx = g.x0 + (i % COLUMNS) * g.block + g.block / 4;
      const by = y0 + Math.floor(i / COLUMNS) * g.block + g.block / 4;
      let sum = 0;
      for (let dy = 0; dy < n; dy++) {
        let p = ((by + dy) * width + bx) * 4;
        for (let dx = 0; dx < n; dx++, p += 4) {
          sum += (rgba[p] * 77 + rgba[p + 1] * 150 + rgba[p + 2] * 29) >> 8;
        }
      }
      if (sum / (n * n) >= 128) bytes[i >> 3] |= 0x80 >> (i % 8);
    }
    const view = new DataView(bytes.buffer);
    if (crc16(bytes.subarray(0, 8)) === view.getUint16(8)) {
      return { frameNumber: view.getUint32(0), captureLow: view.getUint32(4) };
    }
  }
  return null;
}

/** A moving test picture with wall-clock markers, as a camera track. */
export function patternTrack({ width = 640, height = 480, fps = 30 } = {}) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  let n = 0;
  const draw = () => {
    const t = n / fps;
    const hue = (t * 40) % 360;
    const grad = ctx.createLinearGradient(0, 0, width, height);
    grad.addColorStop(0, `hsl(${hue} 70% 45%)`);
    grad.addColorStop(1, `hsl(${(hue + 140) % 360} 70% 35%)`);
    ctx.fillStyle = grad;
    ctx.fillRect(0, 0, width, height);
    const box = Math.floor(height / 5);
    const x = Math.floor((Math.sin(t * 1.7) * 0.5 + 0.5) * (width - box));
    const y = Math.floor((Math.cos(t * 1.3) * 0.5 + 0.5) * (height - 3 * box)) + box;
    ctx.fillStyle = "#f5c542";
    ctx.fillRect(x, y, box, box);
    ctx.fillStyle = "#fff";
    ctx.font = `${Math.floor(height / 12)}px sans-serif`;
    ctx.fillText("Confab test pattern", width * 0.06, height * 0.55);
    drawMarker(ctx, width, height, n, wallMicrosLow32());
    n += 1;
  };
  draw();
  const timer = setInterval(draw, 1000 / fps);
  const track = canvas.captureStream(fps).getVideoTracks()[0];
  const stop = track.stop.bind(track);
  track.stop = () => {
    clearInterval(timer);
    stop();
  };
  return track;
}

/** Reads markers from a <video> as its frames are shown. */
export class MarkerProbe {
  constructor(video) {
    this.video = video;
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.frames = 0;
    this.unreadable = 0;
    this.lastNumber = -1;
    this.outOfOrder = 0;
    this.deltas = []; // (render wall µs − marker µs) mod 2^32, one per new frame
    this.running = true;
    this.sawCallback = false;
    if (video.requestVideoFrameCallback) {
      const onFrame = () => {
        this.sawCallback = true;
        this.sample();
        if (this.running) video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }
    // Headless browsers may not present frames: then poll what the element currently shows.
    this.poll = setInterval(() => { if (!this.sawCallback) this.sample(); }, 10);
  }

  sample() {
    const v = this.video;
    const w = v.videoWidth;
    const h = v.videoHeight;
    if (!w || !h) return;
    const now = wallMicrosLow32();
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.ctx.drawImage(v, 0, 0, w, h);
    const marker = readMarker(this.ctx.getImageData(0, 0, w, h).data, w, h);
    if (!marker) {
      this.unreadable += 1;
      return;
    }
    if (marker.frameNumber === this.lastNumber) return;
    if (marker.frameNumber < this.lastNumber) this.outOfOrder += 1;
    this.lastNumber = marker.frameNumber;
    this.frames += 1;
    if (this.deltas.length < 10000) this.deltas.push(Number((BigInt(now) - BigInt(marker.captureLow)) & 0xffffffffn));
  }

  summary() {
    return {
      frames: this.frames, unreadable: this.unreadable, outOfOrder: this.outOfOrder,
      deltas: this.deltas, presented: this.sawCallback,
    };
  }

  stop() {
    this.running = false;
    clearInterval(this.poll);
  }
}
