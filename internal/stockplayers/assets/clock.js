// The pixel clock: the publisher draws the low 32 bits of Date.now() (ms)
// into the top of each frame, as two rows of 32 black/white cells (the
// second row the bitwise inverse of the first, so a misread frame is
// detected); a player page reads it back from the frame it shows. Cells
// are 1/32 of the width and 1/8 of the height, large enough to survive
// the smallest ladder rung (640x360: 20x45 pixels).
const pixelClock = {
  bits: 32,
  draw(ctx, w, h, ms) {
    const cw = w / 32, ch = h / 8, v = ms >>> 0;
    for (let i = 0; i < 32; i++) {
      const bit = (v >>> (31 - i)) & 1;
      ctx.fillStyle = bit ? "#fff" : "#000";
      ctx.fillRect(i * cw, 0, cw, ch);
      ctx.fillStyle = bit ? "#000" : "#fff";
      ctx.fillRect(i * cw, ch, cw, ch);
    }
  },
  // read returns the drawn ms (full epoch time, the high bits taken from
  // near, a Date.now() close to it) or null when the rows disagree.
  read(ctx, w, h, near) {
    const cw = w / 32, ch = h / 8;
    const px = ctx.getImageData(0, 0, w, Math.ceil(2 * ch)).data;
    const luma = (x, y) => {
      const o = (Math.floor(y) * w + Math.floor(x)) * 4;
      return 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
    };
    let v = 0;
    for (let i = 0; i < 32; i++) {
      const x = (i + 0.5) * cw;
      const a = luma(x, ch * 0.5) > 128, b = luma(x, ch * 1.5) > 128;
      if (a === b) return null;
      v = (v * 2) + (a ? 1 : 0);
    }
    // Nearest epoch ms to near whose low 32 bits are v.
    const m = 4294967296;
    let t = Math.floor(near / m) * m + v;
    if (t - near > m / 2) t -= m;
    if (near - t > m / 2) t += m;
    return t;
  },
};
