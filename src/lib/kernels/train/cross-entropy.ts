// Cross-entropy over the vocabulary for a chunk of rows, in place: logits become dlogits = (softmax - onehot) * w,
// w = 1 / (number of unmasked labels in the whole batch). Masked rows (label 0xffffffff, i.e. -100) get zero
// gradient and zero loss. One workgroup per row; the row's loss (lse - logit[label]) goes to `loss`.

export function crossEntropyShader(): string {
  return /* wgsl */ `
struct Params { rows: u32, V: u32, labelOff: u32, weight: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;  // (rows, V) -> dlogits
@group(0) @binding(2) var<storage, read> labels: array<u32>;        // (M)
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;    // (M)
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let r = wid.x;
  if (r >= P.rows) { return; }
  let label = labels[P.labelOff + r];
  let b = r * P.V;
  var mx = -3.0e38;
  for (var v = tid; v < P.V; v += 256u) { mx = max(mx, logits[b + v]); }
  red[tid] = mx;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var v = tid; v < P.V; v += 256u) { sum += exp(logits[b + v] - mx); }
  red[tid] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let lse = mx + log(red[0]);
  let masked = label == 0xffffffffu;
  if (tid == 0u) { loss[P.labelOff + r] = select(lse - logits[b + label], 0.0, masked); }
  workgroupBarrier();
  for (var v = tid; v < P.V; v += 256u) {
    let g = exp(logits[b + v] - lse) - select(0.0, 1.0, v == label);
    logits[b + v] = select(g * P.weight, 0.0, masked);
  }
}`;
}
