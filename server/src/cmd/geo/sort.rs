//! The two sorts Redis orders search results with, transcribed so that
//! equal distances come out in the same order: glibc's `qsort` (a merge
//! sort) for a full sort, Redis's `pqsort` when COUNT keeps only the first
//! results. Both take C's three-way comparator.

/// glibc's `qsort` (`msort.c`): a top-down merge sort that takes from the
/// left run while `cmp <= 0`. Stable, and unlike Rust's sorts it follows C's
/// comparator even when that is not a total order (a NaN distance from
/// nearly antipodal points), so it neither panics nor orders differently.
pub(super) fn merge_sort<T>(v: &mut Vec<T>, cmp: fn(&T, &T) -> i32) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    let mut scratch = Vec::with_capacity(v.len());
    let by_index = |i: usize, j: usize| match (v.get(i), v.get(j)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => 0,
    };
    merge_sort_indices(&mut order, &mut scratch, &by_index);
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// The recursion of [`merge_sort`], on positions.
fn merge_sort_indices(
    order: &mut [usize],
    scratch: &mut Vec<usize>,
    cmp: &dyn Fn(usize, usize) -> i32,
) {
    let n = order.len();
    if n <= 1 {
        return;
    }
    let (left, right) = order.split_at_mut(n / 2);
    merge_sort_indices(left, scratch, cmp);
    merge_sort_indices(right, scratch, cmp);
    scratch.clear();
    let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
    while let (Some(&&x), Some(&&y)) = (l.peek(), r.peek()) {
        if cmp(x, y) <= 0 {
            scratch.push(x);
            l.next();
        } else {
            scratch.push(y);
            r.next();
        }
    }
    // What is left of the right run is already in place.
    scratch.extend(l.copied());
    if let Some(dst) = order.get_mut(..scratch.len()) {
        dst.copy_from_slice(scratch);
    }
}

/// Redis's `pqsort` (`pqsort.c`, NetBSD's `qsort` after Bentley and
/// McIlroy) on `v[a..a + n]`: a quicksort that only sorts the parts that
/// overlap the ranks `lrange..=rrange`, transcribed step for step so equal
/// elements end up where Redis puts them.
pub(super) fn pqsort<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: fn(&T, &T) -> i32,
    lrange: usize,
    rrange: usize,
) {
    let c = |v: &[T], i: usize, j: usize| match (v.get(i), v.get(j)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => 0,
    };
    let med3 = |v: &[T], x: usize, y: usize, z: usize| {
        if c(v, x, y) < 0 {
            if c(v, y, z) < 0 {
                y
            } else if c(v, x, z) < 0 {
                z
            } else {
                x
            }
        } else if c(v, y, z) > 0 {
            y
        } else if c(v, x, z) < 0 {
            x
        } else {
            z
        }
    };
    let insertion_sort = |v: &mut [T], a: usize, n: usize| {
        for pm in a + 1..a + n {
            let mut pl = pm;
            while pl > a && c(v, pl - 1, pl) > 0 {
                v.swap(pl, pl - 1);
                pl -= 1;
            }
        }
    };
    // Whether `v[s..s + len]` holds any of the ranks to sort.
    let overlaps = |s: usize, len: usize| !(rrange < s || lrange >= s + len);
    loop {
        if n < 7 {
            insertion_sort(v, a, n);
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(a, pm);
        let mut swapped = false;
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let r = c(v, pb, a);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    swapped = true;
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(v, pc, a);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    swapped = true;
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            swapped = true;
            pb += 1;
            pc -= 1;
        }
        if !swapped {
            insertion_sort(v, a, n);
            return;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        for k in 0..r {
            v.swap(a + k, pb - r + k);
        }
        let r = (pd - pc).min(pn - pd - 1);
        for k in 0..r {
            v.swap(pb + k, pn - r + k);
        }
        let r = pb - pa;
        if r > 1 && overlaps(a, r) {
            pqsort(v, a, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r <= 1 {
            return;
        }
        a = pn - r;
        n = r;
        if !overlaps(a, n) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pqsort_sorts_the_requested_ranks() {
        fn cmp(a: &u32, b: &u32) -> i32 {
            i32::from(a > b) - i32::from(a < b)
        }
        // A fixed pseudo-random sequence with many equal values.
        let data: Vec<u32> = (0..300u32).map(|i| (i * 7919 + 13) % 97 % 23).collect();
        let mut sorted = data.clone();
        sorted.sort();
        for k in [1, 2, 6, 7, 8, 40, 41, 150, 299, 300] {
            let mut v = data.clone();
            let n = v.len();
            pqsort(&mut v, 0, n, cmp, 0, k - 1);
            assert_eq!(v[..k], sorted[..k], "first {k}");
            let mut rest = v.clone();
            rest.sort();
            assert_eq!(rest, sorted, "a permutation");
        }
        let mut small = vec![3, 1, 2];
        pqsort(&mut small, 0, 3, cmp, 0, 0);
        assert_eq!(small, [1, 2, 3]);
    }

    #[test]
    fn merge_sort_is_stable_and_follows_c_comparisons() {
        fn by_key(a: &(u32, u32), b: &(u32, u32)) -> i32 {
            i32::from(a.0 > b.0) - i32::from(a.0 < b.0)
        }
        let mut v: Vec<(u32, u32)> = (0..50u32).map(|i| ((i * 31) % 7, i)).collect();
        let mut expected = v.clone();
        expected.sort_by_key(|p| p.0);
        merge_sort(&mut v, by_key);
        assert_eq!(v, expected);
        // NaN compares as smaller both ways: no panic, every element kept.
        let nan_first = |a: &f64, b: &f64| {
            if a > b {
                1
            } else if a == b {
                0
            } else {
                -1
            }
        };
        let mut d = vec![3.0, f64::NAN, 1.0, f64::NAN, 2.0, 0.5];
        merge_sort(&mut d, nan_first);
        assert_eq!(d.len(), 6);
        assert_eq!(d.iter().filter(|x| x.is_nan()).count(), 2);
    }
}
