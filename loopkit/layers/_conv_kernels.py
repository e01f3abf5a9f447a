"""Compiled (numba) convolution and pooling kernels over channels-last images.

Every kernel reads the unpadded input and treats positions outside it as padding
(zeros for convolution, never-winning for max pooling), so no padded copy is made.
Windows are described by their strides, dilation and leading padding ``(top,
left)``; output sizes come from the caller's buffers. Arrays are C-contiguous, all
floating arrays of one call share one dtype (float32 or float64), and arithmetic is
IEEE in that dtype (no fastmath): sums are taken in a fixed order, vectorized over
the innermost channel axis, but not the order of the NumPy im2col code they replace.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = [
    "col2im",
    "global_average_pool2d",
    "global_average_pool2d_backward",
    "im2col",
    "im2col_transposed",
    "max_pool2d",
    "max_pool2d_backward",
]

_jit = numba.njit(nogil=True, cache=True, error_model="numpy", fastmath=False)


@_jit
def im2col(x: Any, strides: Any, dilation: Any, pads: Any, cols: Any) -> None:
    """Copy every window of ``x`` into ``cols``, zeros where it reaches into padding.

    ``cols[n, i, j, a, b, c] = x[n, i*sh + a*dh - top, j*sw + b*dw - left, c]``: one
    row of ``kh*kw*channels`` per output position, copied channel runs at a time.

    Args:
        x: ``(batch, height, width, channels)`` images.
        strides: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        pads: ``(top, left)``.
        cols: ``(batch, out_h, out_w, kh, kw, channels)``, overwritten.
    """
    batch, h, w, channels = x.shape
    _, oh, ow, kh, kw, _ = cols.shape
    sh, sw = strides
    dh, dw = dilation
    top, left = pads
    zero = cols.dtype.type(0)
    for n in range(batch):
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    r = i * sh + a * dh - top
                    for b in range(kw):
                        s = j * sw + b * dw - left
                        if r < 0 or r >= h or s < 0 or s >= w:
                            for c in range(channels):
                                cols[n, i, j, a, b, c] = zero
                        else:
                            for c in range(channels):
                                cols[n, i, j, a, b, c] = x[n, r, s, c]


@_jit
def im2col_transposed(x: Any, strides: Any, dilation: Any, pads: Any, cols: Any) -> None:
    """``im2col`` laid out tap-major: one row of ``batch*out_h*out_w`` per window tap.

    ``cols[a, b, c, n, i, j] = x[n, i*sh + a*dh - top, j*sw + b*dw - left, c]``, zeros
    in the padding. For images with few channels this layout copies along output
    columns (long runs instead of a few channels), and BLAS multiplies it faster.

    Args:
        x: ``(batch, height, width, channels)`` images.
        strides: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        pads: ``(top, left)``.
        cols: ``(kh, kw, channels, batch, out_h, out_w)``, overwritten.
    """
    batch, h, w, channels = x.shape
    kh, kw, _, _, oh, ow = cols.shape
    sh, sw = strides
    dh, dw = dilation
    top, left = pads
    zero = cols.dtype.type(0)
    for a in range(kh):
        for b in range(kw):
            for c in range(channels):
                for n in range(batch):
                    for i in range(oh):
                        r = i * sh + a * dh - top
                        if r < 0 or r >= h:
                            for j in range(ow):
                                cols[a, b, c, n, i, j] = zero
                            continue
                        for j in range(ow):
                            s = j * sw + b * dw - left
                            if s < 0 or s >= w:
                                cols[a, b, c, n, i, j] = zero
                            else:
                                cols[a, b, c, n, i, j] = x[n, r, s, c]


@_jit
def col2im(dcols: Any, strides: Any, dilation: Any, pads: Any, dx: Any) -> None:
    """Add every window's gradient back onto the image it was copied from.

    The adjoint of ``im2col``: ``dx`` is zeroed, then ``dcols[n, i, j, a, b, c]`` is
    added to ``dx[n, i*sh + a*dh - top, j*sw + b*dw - left, c]`` for every position
    inside the image (padding positions are dropped).

    Args:
        dcols: ``(batch, out_h, out_w, kh, kw, channels)``.
        strides: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        pads: ``(top, left)``.
        dx: ``(batch, height, width, channels)``, overwritten.
    """
    batch, h, w, channels = dx.shape
    _, oh, ow, kh, kw, _ = dcols.shape
    sh, sw = strides
    dh, dw = dilation
    top, left = pads
    dx[...] = 0
    for n in range(batch):
        for i in range(oh):
            for a in range(kh):
                r = i * sh + a * dh - top
                if r < 0 or r >= h:
                    continue
                for j in range(ow):
                    for b in range(kw):
                        s = j * sw + b * dw - left
                        if s < 0 or s >= w:
                            continue
                        for c in range(channels):
                            dx[n, r, s, c] += dcols[n, i, j, a, b, c]


@_jit
def max_pool2d(
    x: Any, pool: Any, strides: Any, pads: Any, out: Any, argmax: Any, record: bool
) -> None:
    """Max over each window; optionally record where the first maximum is.

    ``out[n, i, j, c]`` is the maximum of ``x[n, i*sh + a - top, j*sw + b - left, c]``
    over the window positions ``(a, b)`` inside the image; NaN if any of them is NaN.
    With ``record``, ``argmax[n, i, j, c]`` gets ``a * pool_w + b`` of the first
    maximum in row-major window order (ties go to the earliest), or -1 when the
    maximum is NaN (such a window passes no gradient) or the window holds no input.
    The loops run along one window row of the image at a time, so ``x`` is read row
    by row.

    Args:
        x: ``(batch, height, width, channels)`` images.
        pool: ``(pool_h, pool_w)``.
        strides: ``(sh, sw)``.
        pads: ``(top, left)``.
        out: ``(batch, out_h, out_w, channels)``, overwritten.
        argmax: Integer array of the shape of ``out`` (int8 suffices for windows of
            up to 127 positions), overwritten when ``record``.
        record: Whether to write ``argmax``.
    """
    batch, h, w, channels = x.shape
    _, oh, ow, _ = out.shape
    ph, pw = pool
    sh, sw = strides
    top, left = pads
    ninf = -np.inf
    for n in range(batch):
        for i in range(oh):
            for j in range(ow):  # a window without inputs keeps these
                for c in range(channels):
                    out[n, i, j, c] = ninf
                    if record:
                        argmax[n, i, j, c] = -1
            a0 = max(0, top - i * sh)  # the window's first row inside the image
            for a in range(a0, ph):
                r = i * sh + a - top
                if r >= h:
                    break
                for j in range(ow):
                    b0 = max(0, left - j * sw)
                    for b in range(b0, pw):
                        s = j * sw + b - left
                        if s >= w:
                            break
                        k = a * pw + b
                        if a == a0 and b == b0:  # the first input starts the window
                            for c in range(channels):
                                out[n, i, j, c] = x[n, r, s, c]
                                if record:
                                    argmax[n, i, j, c] = k
                        elif record:
                            for c in range(channels):
                                v = x[n, r, s, c]
                                best = out[n, i, j, c]
                                take = v > best or (v != v and best == best)
                                out[n, i, j, c] = v if take else best
                                argmax[n, i, j, c] = k if take else argmax[n, i, j, c]
                        else:
                            for c in range(channels):
                                v = x[n, r, s, c]
                                best = out[n, i, j, c]
                                take = v > best or (v != v and best == best)
                                out[n, i, j, c] = v if take else best
            if record:
                for j in range(ow):
                    for c in range(channels):
                        best = out[n, i, j, c]
                        if best != best:
                            argmax[n, i, j, c] = -1


@_jit
def max_pool2d_backward(
    dy: Any, argmax: Any, pool: Any, strides: Any, pads: Any, dx: Any
) -> None:
    """Route each window's gradient to its recorded maximum, adding where windows overlap.

    ``dx[n, r, s, c]`` is the sum of ``dy[n, i, j, c]`` over the windows whose
    recorded position ``argmax[n, i, j, c]`` (``a * pool_w + b``) is that input, zero
    if there is none; windows with ``argmax`` -1 add nothing. When strides equal the
    pool size the windows do not overlap and every input is written once; otherwise
    ``dx`` is zeroed first and the gradients are added.

    Args:
        dy: ``(batch, out_h, out_w, channels)``, dL/d(output).
        argmax: Window positions recorded by ``max_pool2d``.
        pool: ``(pool_h, pool_w)``.
        strides: ``(sh, sw)``.
        pads: ``(top, left)``.
        dx: ``(batch, height, width, channels)``, overwritten.
    """
    batch, h, w, channels = dx.shape
    _, oh, ow, _ = dy.shape
    ph, pw = pool
    sh, sw = strides
    top, left = pads
    zero = dx.dtype.type(0)
    tiles = sh == ph and sw == pw
    if not tiles:
        dx[...] = 0
    for n in range(batch):
        for i in range(oh):
            for a in range(ph):
                r = i * sh + a - top
                if r < 0 or r >= h:
                    continue
                for j in range(ow):
                    for b in range(pw):
                        s = j * sw + b - left
                        if s < 0 or s >= w:
                            continue
                        k = a * pw + b
                        if tiles:
                            for c in range(channels):
                                hit = argmax[n, i, j, c] == k
                                dx[n, r, s, c] = dy[n, i, j, c] if hit else zero
                        else:
                            for c in range(channels):
                                hit = argmax[n, i, j, c] == k
                                dx[n, r, s, c] += dy[n, i, j, c] if hit else zero
                if tiles:  # columns right of the last window
                    for s in range(max(0, ow * sw - left), w):
                        for c in range(channels):
                            dx[n, r, s, c] = zero
        if tiles:  # rows below the last window
            for r in range(max(0, oh * sh - top), h):
                for s in range(w):
                    for c in range(channels):
                        dx[n, r, s, c] = zero


@_jit
def global_average_pool2d(x: Any, out: Any) -> None:
    """Per-channel mean over the image: ``out[n, c] = sum_{r, s} x[n, r, s, c] / (h*w)``.

    The sum runs over rows, then columns, in the array's dtype, and is divided by
    ``h*w`` as ``np.mean`` does.

    Args:
        x: ``(batch, height, width, channels)`` images.
        out: ``(batch, channels)``, overwritten.
    """
    batch, h, w, channels = x.shape
    count = x.dtype.type(h * w)
    for n in range(batch):
        for c in range(channels):
            out[n, c] = 0
        for r in range(h):
            for s in range(w):
                for c in range(channels):
                    out[n, c] += x[n, r, s, c]
        for c in range(channels):
            out[n, c] = out[n, c] / count


@_jit
def global_average_pool2d_backward(dy: Any, dx: Any) -> None:
    """Spread each channel's gradient evenly: ``dx[n, r, s, c] = dy[n, c] / (h*w)``.

    Computed as ``dy * (1 / (h*w))``, the reciprocal rounded once to the dtype.

    Args:
        dy: ``(batch, channels)``, dL/d(output).
        dx: ``(batch, height, width, channels)``, overwritten.
    """
    batch, h, w, channels = dx.shape
    scale = dx.dtype.type(1.0 / (h * w))
    for n in range(batch):
        for r in range(h):
            for s in range(w):
                for c in range(channels):
                    dx[n, r, s, c] = dy[n, c] * scale
