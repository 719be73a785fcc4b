// The gate activations of the MLP's gated linear unit, as WGSL functions and their derivatives:
//   silu(g)      = g sigmoid(g),                         silu'(g) = s (1 + g (1 - s)), s = sigmoid(g)
//   gelu_tanh(g) = g/2 (1 + tanh(c (g + 0.044715 g^3))),  c = sqrt(2 / pi)   (transformers' gelu_pytorch_tanh)
//   gelu_tanh'(g) = (1 + t)/2 + g/2 (1 - t^2) c (1 + 3 0.044715 g^2)
// tanh is taken from exp(-2|u|), which cannot overflow (a device's tanh may return NaN for large |u|).

import type { ModelConfig } from '../model/config.js';

export type GluAct = ModelConfig['hiddenAct'];

/** tanh from exp(-2|u|): no overflow for any u (soft-capping and GELU use it). */
export const TANH_SAFE = /* wgsl */ `
fn tanh_safe(u: f32) -> f32 {
  let e = exp(-2.0 * abs(u));
  return sign(u) * (1.0 - e) / (1.0 + e);
}`;

export const ACTIVATIONS = /* wgsl */ `${TANH_SAFE}
fn act_silu(g: f32) -> f32 { return g / (1.0 + exp(-g)); }
fn act_silu_grad(g: f32) -> f32 { let s = 1.0 / (1.0 + exp(-g)); return s * (1.0 + g * (1.0 - s)); }
const GELU_C = 0.7978845608028654;
fn act_gelu_tanh(g: f32) -> f32 { return 0.5 * g * (1.0 + tanh_safe(GELU_C * (g + 0.044715 * g * g * g))); }
fn act_gelu_tanh_grad(g: f32) -> f32 {
  let t = tanh_safe(GELU_C * (g + 0.044715 * g * g * g));
  return 0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * g * g);
}`;

/** The WGSL function of an activation (and of its derivative, with `grad`). */
export const actFn = (act: GluAct, grad = false): string => `act_${act}${grad ? '_grad' : ''}`;
