//! The witness complex of one draw (closed form of gudhi's relaxed weak witness complex, see the module
//! docs of `super`) and its H1 persistence.
//!
//! Edge and triangle values live in dense packed tables (`L(L−1)/2` and `L(L−1)(L−2)/6` entries) with a
//! list of the touched entries, so a draw costs time in proportion to the simplices it creates and the
//! tables are reset entry by entry (no allocation per simplex, none per draw once the workspace exists).
//!
//! H1 (`Workspace::h1`): the triangles are sorted once by (value, packed index); the coboundary columns
//! of all edges are filled from that order in one counting pass (so each column is born sorted, no
//! per-column sort); a column whose pivot is free is used where it lies, and the few that collide are
//! reduced in a bit set over triangle ranks (a Z/2 addition is one bit flip per entry of the added
//! column; the pivot only grows, so it is found by a forward scan).
//!
//! Extra candidates (landmarks after the needed ones in a witness's sorted list, see
//! `super::distances`) never enter a simplex: the enumeration for a first-omitted position `p ≤ 2` stops
//! at the first `j` with `d_j − α > d_p`, and every extra candidate satisfies `d_j − α > d₂ ≥ d_p`.

use super::distances::{Cloud, Distances, simd_dispatch};
use super::{Rlt, sweep};
use crate::{GanEvalError, Result};

const ABSENT: u32 = u32::MAX;

/// Index of the edge {a, b}, a < b, in the packed list of pairs.
#[inline]
pub(super) fn edge_index(a: usize, b: usize) -> usize {
    b * (b - 1) / 2 + a
}

/// Index of the triangle {a, b, c}, a < b < c, in the packed list of triples.
#[inline]
pub(super) fn triangle_index(a: usize, b: usize, c: usize) -> usize {
    c * (c - 1) * (c - 2) / 6 + b * (b - 1) / 2 + a
}

#[inline]
pub(super) fn sort3(a: usize, b: usize, c: usize) -> (usize, usize, usize) {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let (b, c) = if b < c { (b, c) } else { (c, b) };
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    (a, b, c)
}

/// Minimum relaxation per edge / triangle (∞ = never witnessed) and the touched entries.
struct Tables {
    edge_val: Vec<f64>,
    tri_val: Vec<f64>,
    edges: Vec<u32>,
    /// Touched triangles: packed index and sorted vertices.
    tris: Vec<(u32, [u16; 3])>,
}

impl Tables {
    #[inline(always)]
    fn edge(&mut self, a: usize, b: usize, v: f64) {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        let i = edge_index(a, b);
        let e = &mut self.edge_val[i];
        let old = *e;
        // Branch-free minimum; the rarer first touch (∞ before) records the entry.
        *e = if v < old { v } else { old };
        if old == f64::INFINITY && v < old {
            self.edges.push(i as u32);
        }
    }

    #[inline(always)]
    fn triangle(&mut self, a: usize, b: usize, c: usize, v: f64) {
        let (a, b, c) = sort3(a, b, c);
        let i = triangle_index(a, b, c);
        let t = &mut self.tri_val[i];
        let old = *t;
        *t = if v < old { v } else { old };
        if old == f64::INFINITY && v < old {
            self.tris.push((i as u32, [a as u16, b as u16, c as u16]));
        }
    }

    fn reset(&mut self) {
        for &e in &self.edges {
            self.edge_val[e as usize] = f64::INFINITY;
        }
        for &(t, _) in &self.tris {
            self.tri_val[t as usize] = f64::INFINITY;
        }
        self.edges.clear();
        self.tris.clear();
    }
}

/// Buffers of one draw, reused across draws.
pub(super) struct Workspace {
    pub l: usize,
    /// Tests: skip the screened route (its results must be identical).
    #[cfg(test)]
    pub exact_only: bool,
    edge_ends: Vec<[u16; 2]>,
    dist: Distances,
    tables: Tables,
    /// Persistence buffers.
    order: Vec<(f64, u32)>,
    /// Triangles in filtration order (keys, see `h1`).
    tri_keys: Vec<u128>,
    parent: Vec<u32>,
    positive: Vec<(f64, u32)>,
    /// Per triangle rank: the stored column with that pivot.
    pivot_col: Vec<u32>,
    /// Coboundary columns of all edges (CSR offsets per packed edge index) and their fill cursors.
    col_start: Vec<u32>,
    cursor: Vec<u32>,
    /// Column entries: the CSR columns, then the reduced columns.
    pool: Vec<u32>,
    /// Stored columns (start, length) in `pool`.
    cols: Vec<(u32, u32)>,
    /// The column being reduced, as a bit set over triangle ranks.
    bits: Vec<u64>,
    bars: Vec<[f64; 2]>,
    essential: Vec<bool>,
}

impl Workspace {
    pub fn new(l: usize) -> Self {
        let n_edges = l * l.saturating_sub(1) / 2;
        let n_tri = if l >= 3 { l * (l - 1) * (l - 2) / 6 } else { 0 };
        let mut edge_ends = Vec::with_capacity(n_edges);
        for b in 1..l {
            for a in 0..b {
                edge_ends.push([a as u16, b as u16]);
            }
        }
        Self {
            l,
            #[cfg(test)]
            exact_only: false,
            edge_ends,
            dist: Distances::default(),
            tables: Tables {
                edge_val: vec![f64::INFINITY; n_edges],
                tri_val: vec![f64::INFINITY; n_tri],
                edges: Vec::new(),
                tris: Vec::new(),
            },
            order: Vec::new(),
            tri_keys: Vec::new(),
            parent: vec![0; l],
            positive: Vec::new(),
            pivot_col: Vec::new(),
            col_start: Vec::new(),
            cursor: Vec::new(),
            pool: Vec::new(),
            cols: Vec::new(),
            bits: Vec::new(),
            bars: Vec::new(),
            essential: Vec::new(),
        }
    }

    pub fn draw(
        &mut self,
        cloud: &Cloud,
        landmarks: &[usize],
        gamma: f64,
        i_max: usize,
    ) -> Result<Rlt> {
        debug_assert_eq!(landmarks.len(), self.l);
        #[cfg(test)]
        {
            self.dist.exact_only = self.exact_only;
        }
        let alpha_max = self.dist.compute(cloud, landmarks, gamma)?;
        if !(alpha_max > 0.0 && alpha_max.is_finite()) {
            return Err(GanEvalError::invalid(
                "points",
                format!(
                    "α_max = γ·max distance = {alpha_max}: the landmarks coincide with every point (all points identical?)"
                ),
            ));
        }
        self.tables.reset();
        self.witness_complex(cloud.n, alpha_max);
        let (edges, triangles) = self.h1();
        let mut rlt = vec![0.0; i_max];
        if self.bars.is_empty() {
            rlt[0] = 1.0;
        } else {
            let mut births: Vec<f64> = self.bars.iter().map(|b| b[0]).collect();
            let mut deaths: Vec<f64> = self
                .bars
                .iter()
                .map(|b| if b[1].is_infinite() { alpha_max } else { b[1] })
                .collect();
            sweep(&mut births, &mut deaths, alpha_max, &mut rlt);
        }
        let mut pairs: Vec<([f64; 2], bool)> = self
            .bars
            .iter()
            .zip(&self.essential)
            .map(|(b, &e)| ([b[0], if e { alpha_max } else { b[1] }], e))
            .collect();
        pairs.sort_by(|x, y| {
            x.0[0]
                .total_cmp(&y.0[0])
                .then(x.0[1].total_cmp(&y.0[1]))
                .then(x.1.cmp(&y.1))
        });
        Ok(Rlt {
            rlt,
            alpha_max,
            bars: pairs.iter().map(|p| p.0).collect(),
            essential: pairs.iter().map(|p| p.1).collect(),
            edges,
            triangles,
        })
    }

    simd_dispatch!(
        /// Minimum relaxation of every edge and triangle over all witnesses.
        fn witness_complex / witness_complex_avx2 => witness_complex_body(&mut self, n: usize, alpha: f64) -> ()
    );

    #[inline(always)]
    fn witness_complex_body(&mut self, n: usize, alpha: f64) {
        let tv = &mut self.tables;
        for w in 0..n {
            let cand = self.dist.candidates(w);
            let c = cand.len();
            let id = |p: usize| cand[p].1 as usize;
            let dd = |p: usize| cand[p].0;
            // Last position j with d_j − α ≤ d_p.
            let reach = |p: usize| {
                let dp = dd(p);
                let mut q = p;
                while q + 1 < c && dd(q + 1) - alpha <= dp {
                    q += 1;
                }
                q
            };
            // σ = first positions only (first omitted p = |σ|): relaxation 0.
            if c >= 2 {
                tv.edge(id(0), id(1), 0.0);
            }
            if c >= 3 {
                tv.triangle(id(0), id(1), id(2), 0.0);
            }
            // p = 0: σ ⊂ {1..=q0}.
            if c >= 2 {
                let q0 = reach(0);
                let d0 = dd(0);
                for k in 2..=q0 {
                    let v = dd(k) - d0;
                    for j in 1..k {
                        tv.edge(id(j), id(k), v);
                        for i in 1..j {
                            tv.triangle(id(i), id(j), id(k), v);
                        }
                    }
                }
            }
            // p = 1: σ = {0} ∪ T, T ⊂ {2..=q1}.
            if c >= 3 {
                let q1 = reach(1);
                let d1 = dd(1);
                for k in 2..=q1 {
                    let v = dd(k) - d1;
                    tv.edge(id(0), id(k), v);
                    for j in 2..k {
                        tv.triangle(id(0), id(j), id(k), v);
                    }
                }
            }
            // p = 2: σ = {0, 1, j}, j ∈ {3..=q2}.
            if c >= 4 {
                let q2 = reach(2);
                let d2 = dd(2);
                for k in 3..=q2 {
                    tv.triangle(id(0), id(1), id(k), dd(k) - d2);
                }
            }
        }
    }

    /// H1 bars of the complex in `tables` (into `bars`, `essential`); returns the number of edges and
    /// triangles.
    ///
    /// Persistent **co**homology with clearing (same pairs as the homology column reduction of the module
    /// docs, de Silva–Morozov–Vejdemo-Johansson): union–find pairs the negative edges with H0 deaths and
    /// clears their columns; the coboundary column of each positive edge (its cofacet triangles, by
    /// filtration rank) is reduced from the youngest edge to the oldest with pivot = oldest triangle; a
    /// nonzero column pairs `[f(e), f(t))`, a zero one leaves `e` essential.
    fn h1(&mut self) -> (usize, usize) {
        let tb = &self.tables;
        self.bars.clear();
        self.essential.clear();
        // Edges in filtration order; union–find splits them into negative (H0 deaths) and positive.
        self.order.clear();
        self.order
            .extend(tb.edges.iter().map(|&e| (tb.edge_val[e as usize], e)));
        // Values are ≥ +0 (relaxations d_k − d_p ≥ 0), so their bit patterns sort as the numbers.
        self.order.sort_unstable_by_key(|&(v, e)| (v.to_bits(), e));
        let n_edges = self.order.len();
        for (i, p) in self.parent.iter_mut().enumerate() {
            *p = i as u32;
        }
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let gp = parent[parent[x as usize] as usize];
                parent[x as usize] = gp;
                x = gp;
            }
            x
        }
        // `positive`: the positive edges in filtration order.
        self.positive.clear();
        for &(v, e) in &self.order {
            let [a, b] = self.edge_ends[e as usize];
            let (ra, rb) = (
                find(&mut self.parent, a as u32),
                find(&mut self.parent, b as u32),
            );
            if ra != rb {
                self.parent[ra.max(rb) as usize] = ra.min(rb);
            } else {
                self.positive.push((v, e));
            }
        }
        // Triangles whose three edges are in the complex, in filtration order (value, packed index), as
        // keys `value bits · 2⁶⁴ + packed index · 2³² + position in the touched list` (values ≥ +0 sort
        // as their bit patterns); a triangle's rank is its key's position.
        self.tri_keys.clear();
        for (k, &(t, [a, b, c])) in tb.tris.iter().enumerate() {
            let (a, b, c) = (usize::from(a), usize::from(b), usize::from(c));
            let (f1, f2, f3) = (
                tb.edge_val[edge_index(a, b)],
                tb.edge_val[edge_index(a, c)],
                tb.edge_val[edge_index(b, c)],
            );
            if f1.is_finite() && f2.is_finite() && f3.is_finite() {
                let v = tb.tri_val[t as usize].max(f1).max(f2).max(f3);
                self.tri_keys
                    .push((u128::from(v.to_bits()) << 64) | (u128::from(t) << 32) | k as u128);
            }
        }
        self.tri_keys.sort_unstable();
        let n_tri = self.tri_keys.len();
        // The coboundary column of every edge (its cofacets' ranks), all at once: counted, then filled
        // in rank order, so each column comes out sorted. `pool[col_start[e]..col_start[e + 1]]`.
        let n_all = self.edge_ends.len();
        self.col_start.clear();
        self.col_start.resize(n_all + 1, 0);
        let faces = |key: u128| {
            let [a, b, c] = tb.tris[key as u32 as usize].1.map(usize::from);
            [edge_index(a, b), edge_index(a, c), edge_index(b, c)]
        };
        for &key in &self.tri_keys {
            for e in faces(key) {
                self.col_start[e + 1] += 1;
            }
        }
        for e in 0..n_all {
            self.col_start[e + 1] += self.col_start[e];
        }
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.col_start[..n_all]);
        self.pool.clear();
        self.pool.resize(3 * n_tri, 0);
        for (r, &key) in self.tri_keys.iter().enumerate() {
            for e in faces(key) {
                self.pool[self.cursor[e] as usize] = r as u32;
                self.cursor[e] += 1;
            }
        }
        // Reduction of the positive edges' columns, youngest edge first. A column whose pivot (oldest
        // triangle) is free is stored where it lies; otherwise it is reduced in the bit set `bits` (Z/2
        // additions are bit flips; the pivot only grows, so it is found by scanning forward) and the
        // result appended to `pool`.
        self.pivot_col.clear();
        self.pivot_col.resize(n_tri, ABSENT);
        self.cols.clear();
        self.bits.clear();
        self.bits.resize(n_tri.div_ceil(64), 0);
        for &(fe, e) in self.positive.iter().rev() {
            let (s, end) = (self.col_start[e as usize], self.col_start[e as usize + 1]);
            let mut col = (s, end - s);
            let mut low = if s < end {
                self.pool[s as usize]
            } else {
                ABSENT
            };
            let mut reducing = false;
            while low != ABSENT {
                let pc = self.pivot_col[low as usize];
                if pc == ABSENT {
                    break;
                }
                if !reducing {
                    for &r in &self.pool[s as usize..end as usize] {
                        self.bits[r as usize >> 6] ^= 1 << (r & 63);
                    }
                    reducing = true;
                }
                let (os, olen) = self.cols[pc as usize];
                for &r in &self.pool[os as usize..(os + olen) as usize] {
                    self.bits[r as usize >> 6] ^= 1 << (r & 63);
                }
                // Every entry is ≥ the old pivot, which cancelled.
                let from = low as usize >> 6;
                low = ABSENT;
                for (k, &w) in self.bits.iter().enumerate().skip(from) {
                    if w != 0 {
                        low = (k * 64) as u32 + w.trailing_zeros();
                        break;
                    }
                }
            }
            if low == ABSENT {
                self.bars.push([fe, f64::INFINITY]);
                self.essential.push(true);
                continue;
            }
            if reducing {
                // Move the reduced column out of the bit set (clearing it).
                let start = self.pool.len() as u32;
                for k in low as usize >> 6..self.bits.len() {
                    let mut w = std::mem::take(&mut self.bits[k]);
                    while w != 0 {
                        self.pool.push((k * 64) as u32 + w.trailing_zeros());
                        w &= w - 1;
                    }
                }
                col = (start, self.pool.len() as u32 - start);
            }
            self.cols.push(col);
            self.pivot_col[low as usize] = (self.cols.len() - 1) as u32;
            let ft = f64::from_bits((self.tri_keys[low as usize] >> 64) as u64);
            if ft > fe {
                self.bars.push([fe, ft]);
                self.essential.push(false);
            }
        }
        (n_edges, n_tri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// H1 pairs by the textbook homology column reduction of the triangle boundaries (edges and
    /// triangles in the same total orders as `Workspace::h1`): `(birth, death)` with death ∞ for
    /// essential classes, sorted.
    fn h1_by_homology(ws: &Workspace) -> Vec<(f64, f64)> {
        let tb = &ws.tables;
        let mut edges: Vec<(f64, u32)> = tb
            .edges
            .iter()
            .map(|&e| (tb.edge_val[e as usize], e))
            .collect();
        edges.sort_by_key(|&(v, e)| (v.to_bits(), e));
        let mut rank = vec![usize::MAX; ws.edge_ends.len()];
        for (r, &(_, e)) in edges.iter().enumerate() {
            rank[e as usize] = r;
        }
        let mut tris: Vec<(f64, u32, Vec<usize>)> = Vec::new();
        for &(t, [a, b, c]) in &tb.tris {
            let (a, b, c) = (usize::from(a), usize::from(b), usize::from(c));
            let faces = [edge_index(a, b), edge_index(a, c), edge_index(b, c)];
            if faces.iter().all(|&e| rank[e] != usize::MAX) {
                let v = faces
                    .iter()
                    .fold(tb.tri_val[t as usize], |m, &e| m.max(tb.edge_val[e]));
                let mut col: Vec<usize> = faces.iter().map(|&e| rank[e]).collect();
                col.sort_unstable();
                tris.push((v, t, col));
            }
        }
        tris.sort_by_key(|&(v, t, _)| (v.to_bits(), t));
        // Negative edges (H0 deaths) by union–find in edge order.
        let mut parent: Vec<usize> = (0..ws.l).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                x = p[x];
            }
            x
        }
        let mut negative = vec![false; edges.len()];
        for (r, &(_, e)) in edges.iter().enumerate() {
            let [a, b] = ws.edge_ends[e as usize].map(usize::from);
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            if ra != rb {
                parent[ra] = rb;
                negative[r] = true;
            }
        }
        let mut low_of: Vec<Option<usize>> = vec![None; edges.len()];
        let mut reduced: Vec<Vec<usize>> = Vec::new();
        let mut pairs = Vec::new();
        let mut paired = vec![false; edges.len()];
        for (v, _, col) in &tris {
            let mut col = col.clone();
            while let Some(&low) = col.last() {
                let Some(k) = low_of[low] else { break };
                // Z/2 sum of two sorted columns.
                let (a, b) = (&col, &reduced[k]);
                let (mut i, mut j, mut sum) = (0, 0, Vec::new());
                while i < a.len() || j < b.len() {
                    if j == b.len() || (i < a.len() && a[i] < b[j]) {
                        sum.push(a[i]);
                        i += 1;
                    } else if i == a.len() || b[j] < a[i] {
                        sum.push(b[j]);
                        j += 1;
                    } else {
                        i += 1;
                        j += 1;
                    }
                }
                col = sum;
            }
            if let Some(&low) = col.last() {
                low_of[low] = Some(reduced.len());
                paired[low] = true;
                if *v > edges[low].0 {
                    pairs.push((edges[low].0, *v));
                }
            }
            reduced.push(col);
        }
        for (r, &(v, _)) in edges.iter().enumerate() {
            if !negative[r] && !paired[r] {
                pairs.push((v, f64::INFINITY));
            }
        }
        pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
        pairs
    }

    /// The cohomology reduction (clearing, CSR columns, bit-set reduction) gives exactly the pairs of
    /// the homology reduction, on complexes with many cycles, reductions and essential classes.
    #[test]
    fn h1_equals_the_homology_column_reduction() {
        let (mut checked_bars, mut essential) = (0, 0);
        for (n, dim, l, gamma, seed) in [
            (400usize, 2usize, 32usize, 0.1, 1u64),
            (600, 5, 40, 0.05, 3),
            (1000, 30, 48, 0.02, 4),
            (2000, 50, 64, 0.008, 5),
            (2000, 50, 64, 0.02, 6),
        ] {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let data: Vec<f64> = (0..n * dim)
                .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
                .collect();
            let cloud = Cloud::new(Cow::Borrowed(&data), n, dim);
            let landmarks: Vec<usize> = (0..l).map(|k| (k * 97 + seed as usize) % n).collect();
            let mut ws = Workspace::new(l);
            let r = ws.draw(&cloud, &landmarks, gamma, 100).unwrap();
            let want = h1_by_homology(&ws);
            let mut got: Vec<(f64, f64)> = r
                .bars
                .iter()
                .zip(&r.essential)
                .map(|(b, &e)| (b[0], if e { f64::INFINITY } else { b[1] }))
                .collect();
            got.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
            assert_eq!(got, want, "n {n}, dim {dim}, L {l}, γ {gamma}");
            checked_bars += want.len();
            essential += want.iter().filter(|b| b.1.is_infinite()).count();
        }
        // 372 bars, 33 of them essential.
        assert!(
            checked_bars > 300 && essential > 5,
            "non-trivial complexes: {checked_bars} bars, {essential} essential"
        );
    }
}
