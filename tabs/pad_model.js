// The pad's model in the page: the drawing read while the pen moves, without a round trip to the server.
//
// Three parts, each a port of the Python that the server runs, so that both read a drawing alike:
// - readWeights: the model as tabs/pad_model.py sends it, a safetensors file (an 8-byte header length, a JSON
//   header, the raw little-endian float32 tensors) whose metadata holds the config, the calibration temperature,
//   the framing and the class names;
// - frame: the pad's canvas -> the 28x28 input, as vit/preprocess.py reads a drawing on a canvas (strokes on a
//   picture with no canvas border, a photo or a scan, are left to the server: null);
// - forward: the Vision Transformer of vit/model.py, in float32 arrays, and the CLS token's attention in the last block.
// The pad's script (tabs/pad.py) runs them in a Web Worker (inPage.serve); the tests call inPage.readWeights,
// inPage.frame, inPage.forward and inPage.answers in the page.
const inPage = (() => {
  'use strict';
  // vit/preprocess.py and vit/page.py
  const LUMA = [0.299, 0.587, 0.114], MIN_CONTRAST = 0.1, INK_THRESHOLD = 0.2, NOISE_FLOOR = 0.05, MIN_SPAN = 0.1;
  const KEEP_SPAN = 0.25, KEEP_FLAT = 3, PEN_WIDTH = [1.2, 1.8], FRAME = 28, CENTRE = 14, EVEN_BORDER = 0.08;
  const THICK_PEN = [3.6, 2.0], CANVAS_SHARE = 0.9, LAYER_NORM_EPS = 1e-5;  // torch.nn.LayerNorm's default

  // --- The weights ---------------------------------------------------------------------------------------------

  function readWeights(buffer) {
    const length = Number(new DataView(buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length)));
    const tensors = {};
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      if (entry.dtype !== 'F32') throw new Error(`${name} is ${entry.dtype}, not F32`);
      const [from, to] = entry.data_offsets;  // a copy: a Float32Array needs 4-byte alignment
      tensors[name] = new Float32Array(buffer.slice(8 + length + from, 8 + length + to));
    }
    const meta = header.__metadata__;
    return {tensors, config: JSON.parse(meta.config), temperature: Number(meta.temperature),
            framing: JSON.parse(meta.framing), classNames: JSON.parse(meta.class_names), noun: meta.noun,
            limits: JSON.parse(meta.limits), sure: Number(meta.sure)};
  }

  // --- The drawing -> the model's input --------------------------------------------------------------------------

  const roundHalfEven = (x) => {  // Python's round(): halves go to the even neighbour
    const floor = Math.floor(x), rest = x - floor;
    return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  };

  function percentile(sorted, q) {  // numpy's default (linear) percentile of sorted values
    const at = (sorted.length - 1) * q / 100, low = Math.floor(at), high = Math.min(low + 1, sorted.length - 1);
    return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
  }

  function border(grey, width, height) {  // rows first and last, then columns first and last, as page._border
    const values = [];
    for (const y of [0, height - 1]) for (let x = 0; x < width; x++) values.push(grey[y * width + x]);
    for (const x of [0, width - 1]) for (let y = 0; y < height; y++) values.push(grey[y * width + x]);
    return Float32Array.from(values).sort();
  }

  function greyOf(rgba, width, height) {
    const grey = new Float32Array(width * height);
    for (let i = 0; i < grey.length; i++) {
      if (rgba[4 * i + 3] !== 255) return null;  // transparency: left to the server
      grey[i] = (rgba[4 * i] / 255) * LUMA[0] + (rgba[4 * i + 1] / 255) * LUMA[1] + (rgba[4 * i + 2] / 255) * LUMA[2];
    }
    return grey;
  }

  function inkOf(grey, background) {  // preprocess._ink: bright ink on black, whichever polarity
    let low = Infinity, high = -Infinity;
    for (let i = 0; i < grey.length; i++) {
      if (grey[i] < low) low = grey[i];
      if (grey[i] > high) high = grey[i];
    }
    const sign = background - low > high - background ? -1 : 1;  // darker ink than the page: background - grey
    const ink = new Float32Array(grey.length);
    let peak = -Infinity;
    for (let i = 0; i < grey.length; i++) {
      ink[i] = sign * (grey[i] - background);
      if (ink[i] > peak) peak = ink[i];
    }
    if (peak < MIN_CONTRAST) return null;
    for (let i = 0; i < ink.length; i++) {
      const value = Math.min(Math.max(ink[i] / peak, 0), 1);
      ink[i] = value < NOISE_FLOOR ? 0 : value;
    }
    return ink;
  }

  function extent(ink, width, height, threshold) {  // the bounding box of the pixels at or above threshold
    let top = height, bottom = -1, left = width, right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (ink[y * width + x] < threshold) continue;
        top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
      }
    }
    return bottom < 0 ? null : {top, left, height: bottom - top + 1, width: right - left + 1};
  }

  function crop(image, width, box) {
    const out = new Float32Array(box.width * box.height);
    for (let y = 0; y < box.height; y++) {
      for (let x = 0; x < box.width; x++) out[y * box.width + x] = image[(box.top + y) * width + box.left + x];
    }
    return {pixels: out, width: box.width, height: box.height};
  }

  function penWidth(picture) {  // preprocess.pen_width of the mask at 0.5: 2 * area / perimeter
    const {pixels, width, height} = picture;
    const on = (x, y) => x >= 0 && y >= 0 && x < width && y < height && pixels[y * width + x] >= 0.5;
    let area = 0, perimeter = 0;
    for (let y = -1; y < height; y++) {
      for (let x = -1; x < width; x++) {
        if (on(x, y)) area++;
        if (x >= 0 && on(x, y) !== on(x, y + 1)) perimeter++;
        if (y >= 0 && on(x, y) !== on(x + 1, y)) perimeter++;
      }
    }
    return 2 * area / Math.max(perimeter, 1);
  }

  // Pillow's LANCZOS resampling of a float ("F") image (libImaging/Resample.c): separable, rows first, the kernel
  // widened by the scale when shrinking, weights normalised to sum 1, each pass stored in float32.
  const sinc = (x) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));
  const lanczos = (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0);

  function coefficients(inSize, outSize) {
    const scale = inSize / outSize, filterScale = Math.max(scale, 1), support = 3 * filterScale;
    const result = [];
    for (let out = 0; out < outSize; out++) {
      const centre = (out + 0.5) * scale;
      const start = Math.max(Math.trunc(centre - support + 0.5), 0);
      const count = Math.min(Math.trunc(centre + support + 0.5), inSize) - start;
      const weights = new Float64Array(count);
      let total = 0;
      for (let i = 0; i < count; i++) total += weights[i] = lanczos((i + start - centre + 0.5) * (1 / filterScale));
      if (total !== 0) for (let i = 0; i < count; i++) weights[i] /= total;
      result.push({start, weights});
    }
    return result;
  }

  function resize(picture, width, height) {
    const across = coefficients(picture.width, width), down = coefficients(picture.height, height);
    const wide = new Float32Array(width * picture.height);
    for (let y = 0; y < picture.height; y++) {
      across.forEach(({start, weights}, x) => {
        let sum = 0;
        for (let i = 0; i < weights.length; i++) sum += picture.pixels[y * picture.width + start + i] * weights[i];
        wide[y * width + x] = sum;
      });
    }
    const out = new Float32Array(width * height);
    down.forEach(({start, weights}, y) => {
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let i = 0; i < weights.length; i++) sum += wide[(start + i) * width + x] * weights[i];
        out[y * width + x] = sum;
      }
    });
    return {pixels: out, width, height};
  }

  function fit(picture, box) {  // preprocess._fit: the longer side to `box`, aspect kept, strongest ink 1
    const scale = box / Math.max(picture.width, picture.height);
    const resized = resize(picture, Math.max(1, roundHalfEven(picture.width * scale)),
                           Math.max(1, roundHalfEven(picture.height * scale)));
    const peak = Math.max(resized.pixels.reduce((a, b) => Math.max(a, b)), 1e-6);
    resized.pixels = resized.pixels.map((value) => Math.min(Math.max(value / peak, 0), 1));
    return resized;
  }

  function dilate(picture, radius) {  // preprocess._dilate: padded by radius, each pixel the maximum of its square
    const width = picture.width + 2 * radius, height = picture.height + 2 * radius;
    const value = (x, y) => {  // the padded picture, edges repeated beyond it (page.square_max pads by the edge)
      const px = Math.min(Math.max(x, 0), width - 1) - radius, py = Math.min(Math.max(y, 0), height - 1) - radius;
      const inside = px >= 0 && py >= 0 && px < picture.width && py < picture.height;
      return inside ? picture.pixels[py * picture.width + px] : 0;
    };
    const out = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let best = 0;
        for (let dy = -radius; dy <= radius; dy++) for (let dx = -radius; dx <= radius; dx++) best = Math.max(best, value(x + dx, y + dy));
        out[y * width + x] = best;
      }
    }
    return {pixels: out, width, height};
  }

  function erode(picture, radius) {  // preprocess._erode: padded by radius, each pixel the least of its square
    const {pixels, width: inWidth, height: inHeight} = picture;
    const width = inWidth + 2 * radius, height = inHeight + 2 * radius;
    const at = (x, y) => (x >= 0 && y >= 0 && x < inWidth && y < inHeight ? pixels[y * inWidth + x] : 0);
    const down = new Float32Array(width * height);  // a square's minimum: a minimum along rows of minima down columns
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let least = Infinity;
        for (let d = -2 * radius; d <= 0; d++) least = Math.min(least, at(x - radius, y + d));
        down[y * width + x] = least;
      }
    }
    const out = new Float32Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let least = Infinity;
        for (let d = -radius; d <= radius; d++) {
          least = Math.min(least, x + d >= 0 && x + d < width ? down[y * width + x + d] : 0);
        }
        out[y * width + x] = least;
      }
    }
    return {pixels: out, width, height};
  }

  function toMnistPen(picture, box) {  // preprocess._to_mnist_pen
    const width = penWidth(picture) * box / Math.max(picture.width, picture.height);
    const detail = 4;
    if (width < PEN_WIDTH[0]) {
      return dilate(fit(picture, detail * box), Math.max(1, roundHalfEven((PEN_WIDTH[1] - width) * detail / 2)));
    }
    if (width > THICK_PEN[0]) {
      const radius = Math.max(1, roundHalfEven((width - THICK_PEN[1]) * detail / 2));
      const narrowed = erode(fit(picture, detail * box), radius);
      const found = extent(narrowed.pixels, narrowed.width, narrowed.height, INK_THRESHOLD);
      if (found) return crop(narrowed.pixels, narrowed.width, found);
    }
    return picture;
  }

  // numpy's float32 sum along a row (pairwise, 8 accumulators up to 128 values): the centre of mass of a symmetric drawing sits
  // on a half pixel, and rounds to the same side as the server's only when summed in the same order
  function float32Sum(values, start, count) {
    const f = Math.fround;
    if (count < 8) {
      let sum = -0;
      for (let i = 0; i < count; i++) sum = f(sum + values[start + i]);
      return sum;
    }
    if (count <= 128) {
      const r = Array.from({length: 8}, (_, j) => values[start + j]);
      let i = 8;
      for (; i < count - (count % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f(r[j] + values[start + i + j]);
      let sum = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
      for (; i < count; i++) sum = f(sum + values[start + i]);
      return sum;
    }
    const half = Math.floor(count / 2) - (Math.floor(count / 2) % 8);
    return Math.fround(float32Sum(values, start, half) + float32Sum(values, start + half, count - half));
  }

  function centreOfMass(picture) {  // (row, column), as preprocess._centre_by_mass computes them
    const {pixels, width, height} = picture;
    const mass = float32Sum(pixels, 0, pixels.length);
    let row = 0, column = 0;
    for (let y = 0; y < height; y++) row += float32Sum(pixels, y * width, width) * y;
    const columns = new Float32Array(width);  // numpy adds the rows in turn for a sum down the columns
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) columns[x] += pixels[y * width + x];
    for (let x = 0; x < width; x++) column += columns[x] * x;
    return mass > 0 ? [row / mass, column / mass] : [(height - 1) / 2, (width - 1) / 2];
  }

  function place(picture, byMass) {  // preprocess._centre_by_mass or _centre_by_box, in a 28x28 frame
    const {pixels, width, height} = picture;
    let top = Math.floor((FRAME - height) / 2), left = Math.floor((FRAME - width) / 2);
    if (byMass) {
      const [row, column] = centreOfMass(picture);
      top = Math.min(Math.max(roundHalfEven(CENTRE - row), 0), FRAME - height);
      left = Math.min(Math.max(roundHalfEven(CENTRE - column), 0), FRAME - width);
    }
    const framed = new Float32Array(FRAME * FRAME);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) framed[(top + y) * FRAME + left + x] = pixels[y * width + x];
    return framed;
  }

  // The canvas's RGBA pixels -> {input: 28x28 in [0, 1]}, {keep: true} (no digit yet: keep drawing), {blank: true},
  // or null when the server must read it (transparency, an uneven page, a span too small to read).
  function frame(rgba, width, height, framing) {
    const grey = greyOf(rgba, width, height);
    if (!grey) return null;
    const sorted = border(grey, width, height);
    if (percentile(sorted, 95) - percentile(sorted, 5) >= EVEN_BORDER && framing.pen) return null;
    const median = percentile(sorted, 50);  // the border's tone: the page's
    const canvas = sorted.filter((value) => value === median).length >= CANVAS_SHARE * sorted.length;
    if (framing.pen && !canvas) return null;  // a photo or scan of strokes: the server reads its page (vit/page.py)
    const ink = inkOf(grey, median);
    const found = ink && extent(ink, width, height, INK_THRESHOLD);
    if (!found) return {blank: true};
    const shorter = Math.min(width, height);
    if (framing.pen && (Math.max(found.height, found.width) < KEEP_SPAN * shorter  // a canvas, by now
                        || found.width > KEEP_FLAT * found.height)) return {keep: true};
    if (Math.max(found.height, found.width) < MIN_SPAN * shorter) return null;
    const box = framing.crop_at === INK_THRESHOLD ? found : extent(ink, width, height, framing.crop_at);  // digits: found
    const cropped = crop(ink, width, box);
    const digit = fit(framing.pen ? toMnistPen(cropped, framing.box) : cropped, framing.box);
    return {input: place(digit, framing.by_mass)};
  }

  // --- The Vision Transformer ------------------------------------------------------------------------------------

  // weight (out, in), as PyTorch stores it. Two rows by two outputs at a time: each value read from memory serves two
  // products, which made the default model's forward pass about 1.8 times as fast as one dot product at a time.
  function linear(x, rows, weight, bias, outSize, inSize) {
    const y = new Float32Array(rows * outSize);
    for (let r = 0; r < rows; r += 2) {
      const first = r * inSize, second = r + 1 < rows ? first + inSize : first;  // an odd last row: read twice
      for (let o = 0; o < outSize; o += 2) {
        const u = o * inSize, v = o + 1 < outSize ? u + inSize : u;  // an odd last output: computed twice
        let a = 0, b = 0, c = 0, d = 0;
        for (let i = 0; i < inSize; i++) {
          const x0 = x[first + i], x1 = x[second + i], w0 = weight[u + i], w1 = weight[v + i];
          a += x0 * w0; b += x0 * w1; c += x1 * w0; d += x1 * w1;
        }
        y[r * outSize + o] = a + bias[o];
        if (o + 1 < outSize) y[r * outSize + o + 1] = b + bias[o + 1];
        if (r + 1 < rows) {
          y[(r + 1) * outSize + o] = c + bias[o];
          if (o + 1 < outSize) y[(r + 1) * outSize + o + 1] = d + bias[o + 1];
        }
      }
    }
    return y;
  }

  function layerNorm(x, rows, size, gain, bias) {
    const y = new Float32Array(rows * size);
    for (let r = 0; r < rows; r++) {
      let mean = 0, variance = 0;
      for (let i = 0; i < size; i++) mean += x[r * size + i];
      mean /= size;
      for (let i = 0; i < size; i++) variance += (x[r * size + i] - mean) ** 2;
      const scale = 1 / Math.sqrt(variance / size + LAYER_NORM_EPS);
      for (let i = 0; i < size; i++) y[r * size + i] = (x[r * size + i] - mean) * scale * gain[i] + bias[i];
    }
    return y;
  }

  function erf(x) {  // Abramowitz & Stegun 7.1.26: error under 1.5e-7, far below float32 logits' tolerance here
    const t = 1 / (1 + 0.3275911 * Math.abs(x));
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
      * Math.exp(-x * x);
    return x >= 0 ? y : -y;
  }

  // One head's columns of the tokens' qkv rows, (rows, depth) from column `from`; `across`: transposed, (depth, rows).
  function headPart(qkv, rows, from, depth, stride, across) {
    const part = new Float32Array(rows * depth);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < depth; k++) part[across ? k * rows + r : r * depth + k] = qkv[r * stride + from + k];
    }
    return part;
  }

  function softmaxRows(scores, rows, columns, scale) {  // in place, each row's scores times `scale` first
    for (let r = 0; r < rows; r++) {
      let top = -Infinity, total = 0;
      for (let u = r * columns; u < (r + 1) * columns; u++) top = Math.max(top, scores[u] *= scale);
      for (let u = r * columns; u < (r + 1) * columns; u++) total += scores[u] = Math.exp(scores[u] - top);
      for (let u = r * columns; u < (r + 1) * columns; u++) scores[u] /= total;
    }
  }

  // Multi-head self-attention of the first `queries` tokens over all `tokens` (the last block needs CLS's only);
  // returns the heads' output before the projection and each head's attention from CLS. Each head's scores and
  // mix are products of matrices, done by `linear` with no bias: the queries times the keys, then the scores times
  // the values (transposed, as `linear` wants its weight).
  function attend(qkv, tokens, queries, size, heads) {
    const depth = size / heads, stride = 3 * size, out = new Float32Array(queries * size), fromCls = [];
    const none = new Float32Array(Math.max(tokens, depth));
    for (let h = 0; h < heads; h++) {
      const query = headPart(qkv, queries, h * depth, depth, stride, false);
      const keys = headPart(qkv, tokens, size + h * depth, depth, stride, false);
      const scores = linear(query, queries, keys, none, tokens, depth);
      softmaxRows(scores, queries, tokens, 1 / Math.sqrt(depth));
      const mixed = linear(scores, queries, headPart(qkv, tokens, 2 * size + h * depth, depth, stride, true), none,
                           depth, tokens);
      for (let t = 0; t < queries; t++) out.set(mixed.subarray(t * depth, (t + 1) * depth), t * size + h * depth);
      fromCls.push(scores.subarray(1, tokens));
    }
    return {out, fromCls};
  }

  function plus(a, b) {  // a new array: the residual stream keeps its own
    const sum = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) sum[i] = a[i] + b[i];
    return sum;
  }

  function gelu(v) {  // exact GELU, nn.GELU's default
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = 0.5 * v[i] * (1 + erf(v[i] / Math.SQRT2));
    return out;
  }

  function pieces(input, config) {  // vit/tiling.py: pieces row by row, each flattened row by row, normalised
    const side = config.image_size, size = config.tile_size;
    const [height, width] = {tiles: [size, size], 'horizontal-strips': [size, side], 'vertical-strips': [side, size]}[config.cut];
    const rows = side / height, columns = side / width, out = new Float32Array(side * side);
    let at = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        for (let y = 0; y < height; y++) {
          for (let x = 0; x < width; x++) {
            out[at++] = (input[(r * height + y) * side + c * width + x] - config.pixel_mean) / config.pixel_std;
          }
        }
      }
    }
    return {values: out, count: rows * columns, length: height * width, grid: [rows, columns]};
  }

  // The input (28x28 in [0, 1]) -> {logits, attention: the last block's CLS attention over the pieces, heads averaged}.
  function forward(model, input) {
    const {tensors: w, config} = model, size = config.embed_size, heads = config.num_heads;
    const cut = pieces(input, config), tokens = cut.count + 1;
    const embedded = linear(cut.values, cut.count, w['tile_embedding.weight'], w['tile_embedding.bias'], size, cut.length);
    let x = new Float32Array(tokens * size);
    for (let i = 0; i < tokens * size; i++) {
      x[i] = (i < size ? w.cls_token[i] : embedded[i - size]) + w.pos_embedding[i];
    }
    let attention = null;
    for (let b = 0; b < config.num_layers; b++) {
      const p = `blocks.${b}.`, last = b === config.num_layers - 1, queries = last ? 1 : tokens;
      const normed = layerNorm(x, tokens, size, w[p + 'norm1.weight'], w[p + 'norm1.bias']);
      const qkv = linear(normed, tokens, w[p + 'attention.qkv.weight'], w[p + 'attention.qkv.bias'], 3 * size, size);
      const attended = attend(qkv, tokens, queries, size, heads);
      const projected = linear(attended.out, queries, w[p + 'attention.proj.weight'], w[p + 'attention.proj.bias'], size, size);
      const kept = plus(x.subarray(0, queries * size), projected);
      const up = linear(layerNorm(kept, queries, size, w[p + 'norm2.weight'], w[p + 'norm2.bias']), queries,
                        w[p + 'mlp.0.weight'], w[p + 'mlp.0.bias'], config.mlp_size, size);
      const activated = gelu(up);
      const down = linear(activated, queries, w[p + 'mlp.3.weight'], w[p + 'mlp.3.bias'], size, config.mlp_size);
      x = plus(kept, down);
      if (last) attention = attended.fromCls[0].map((_, i) => attended.fromCls.reduce((sum, head) => sum + head[i], 0) / heads);
    }
    const cls = layerNorm(x.slice(0, size), 1, size, w['norm.weight'], w['norm.bias']);
    return {logits: linear(cls, 1, w['head.weight'], w['head.bias'], config.num_classes, size), attention, grid: cut.grid};
  }

  // The most likely classes, with calibrated probabilities (softmax of logits / temperature), most likely first.
  function answers(model, logits, count = 3) {
    const scaled = Array.from(logits, (v) => v / model.temperature), top = Math.max(...scaled);
    const weights = scaled.map((v) => Math.exp(v - top)), total = weights.reduce((a, b) => a + b, 0);
    return weights.map((v, i) => ({label: model.classNames[i], probability: v / total}))
      .sort((a, b) => b.probability - a.probability).slice(0, count);
  }

  // The server's verdict on an input (vit/novelty.py, vit/answer.py): 'refused' when no class fires strongly
  // (evidence, the logsumexp of the raw logits, under its limit) or too much of it is ink (the mean pixel over its
  // limit), each score rounded to 4 places as the server rounds it; else 'unsure' when the top calibrated
  // confidence is under `sure`; else 'sure'.
  function verdict(model, input, logits, top) {
    const round4 = (x) => roundHalfEven(x * 1e4) / 1e4, most = Math.max(...logits);
    const evidence = round4(most + Math.log(logits.reduce((sum, v) => sum + Math.exp(v - most), 0)));
    const inkCover = round4(input.reduce((sum, v) => sum + v, 0) / input.length);
    const limits = model.limits;
    if (limits && (evidence < limits.min_evidence || inkCover > limits.max_ink_cover)) return 'refused';
    return top[0].probability < model.sure ? 'unsure' : 'sure';
  }

  // In a Web Worker, so that the page's main thread keeps painting the strokes while the model reads them.
  // In: {load, weights: ArrayBuffer} or {load, pixels, width, height}; out: {load, ready}, {load, failed: why},
  // {load, kind: 'keep'} (no digit yet), {load, kind: 'server'} (left to the server), or {load, kind: 'answers', top,
  // verdict (above), noun, input: the 28x28 input, attention: the last block's CLS attention over the pieces,
  // grid: [rows, columns]}.
  function serve(scope) {
    let model = null;
    scope.onmessage = ({data}) => {
      try {
        if (data.weights) {
          model = readWeights(data.weights);
          scope.postMessage({load: data.load, ready: true});
          return;
        }
        const read = frame(data.pixels, data.width, data.height, model.framing);
        const kind = !read || read.blank ? 'server' : read.keep ? 'keep' : 'answers';
        if (kind !== 'answers') { scope.postMessage({load: data.load, kind}); return; }
        const out = forward(model, read.input), top = answers(model, out.logits);
        scope.postMessage({load: data.load, kind, top, verdict: verdict(model, read.input, out.logits, top),
                           noun: model.noun, input: read.input, attention: out.attention, grid: out.grid});
      } catch (error) {
        scope.postMessage({load: data.load, failed: String(error)});
      }
    };
  }

  return {readWeights, frame, forward, answers, verdict, serve};
})();
