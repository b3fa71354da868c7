//! Descriptors of atomic environments, one module each. Each takes a validated `Structure`,
//! builds its own neighbor list and works per central atom over that atom's neighbor slice.

pub mod bispectrum;
pub mod soap;

/// Splits `buf` into one slice per atom: atom i gets rows offsets[i]..offsets[i+1] of `width`.
pub(crate) fn split_by_offsets<'a, T>(
    mut buf: &'a mut [T],
    offsets: &[usize],
    width: usize,
) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = buf.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        buf = tail;
    }
    out
}
