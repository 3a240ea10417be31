//! The witness complex of one draw (closed form of gudhi's relaxed weak witness complex, see the module
//! docs of `super`) and its H1 persistence.
//!
//! Edge and triangle values live in dense packed tables (`L(L−1)/2` and `L(L−1)(L−2)/6` entries) with a
//! list of the touched entries, so a draw costs time in proportion to the simplices it creates and the
//! tables are reset entry by entry (no allocation per simplex, none per draw once the workspace exists).
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
        if v < *e {
            if e.is_infinite() {
                self.edges.push(i as u32);
            }
            *e = v;
        }
    }

    #[inline(always)]
    fn triangle(&mut self, a: usize, b: usize, c: usize, v: f64) {
        let (a, b, c) = sort3(a, b, c);
        let i = triangle_index(a, b, c);
        let t = &mut self.tri_val[i];
        if v < *t {
            if t.is_infinite() {
                self.tris.push((i as u32, [a as u16, b as u16, c as u16]));
            }
            *t = v;
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
    tri_order: Vec<(f64, u32)>,
    parent: Vec<u32>,
    positive: Vec<(f64, u32)>,
    tri_rank: Vec<u32>,
    pivot_col: Vec<u32>,
    pool: Vec<u32>,
    cols: Vec<(u32, u32)>,
    col: Vec<u32>,
    scratch: Vec<u32>,
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
            tri_order: Vec::new(),
            parent: vec![0; l],
            positive: Vec::new(),
            tri_rank: vec![ABSENT; n_tri],
            pivot_col: Vec::new(),
            pool: Vec::new(),
            cols: Vec::new(),
            col: Vec::new(),
            scratch: Vec::new(),
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
        let l = self.l;
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
        // Triangles whose three edges are in the complex, in filtration order; `tri_rank` maps a packed
        // triangle to its rank.
        self.tri_order.clear();
        for &(t, [a, b, c]) in &tb.tris {
            let (a, b, c) = (usize::from(a), usize::from(b), usize::from(c));
            let (f1, f2, f3) = (
                tb.edge_val[edge_index(a, b)],
                tb.edge_val[edge_index(a, c)],
                tb.edge_val[edge_index(b, c)],
            );
            if f1.is_finite() && f2.is_finite() && f3.is_finite() {
                let v = tb.tri_val[t as usize];
                self.tri_order.push((v.max(f1).max(f2).max(f3), t));
            }
        }
        self.tri_order
            .sort_unstable_by_key(|&(v, t)| (v.to_bits(), t));
        let n_tri = self.tri_order.len();
        // (`tri_rank` is all ABSENT between draws: reset at the end.)
        for (r, &(_, t)) in self.tri_order.iter().enumerate() {
            self.tri_rank[t as usize] = r as u32;
        }
        // Reduction of the positive edges' coboundaries, youngest edge first.
        self.pivot_col.clear();
        self.pivot_col.resize(n_tri, ABSENT);
        self.pool.clear();
        self.cols.clear();
        for &(fe, e) in self.positive.iter().rev() {
            let [a, b] = self.edge_ends[e as usize].map(usize::from);
            self.col.clear();
            for c in 0..l {
                if c == a || c == b {
                    continue;
                }
                let (x, y, z) = sort3(a, b, c);
                let r = self.tri_rank[triangle_index(x, y, z)];
                if r != ABSENT {
                    self.col.push(r);
                }
            }
            self.col.sort_unstable();
            let mut paired = false;
            while let Some(&low) = self.col.first() {
                let pc = self.pivot_col[low as usize];
                if pc == ABSENT {
                    let start = self.pool.len() as u32;
                    self.pool.extend_from_slice(&self.col);
                    self.cols.push((start, self.col.len() as u32));
                    self.pivot_col[low as usize] = (self.cols.len() - 1) as u32;
                    let ft = self.tri_order[low as usize].0;
                    if ft > fe {
                        self.bars.push([fe, ft]);
                        self.essential.push(false);
                    }
                    paired = true;
                    break;
                }
                let (s, len) = self.cols[pc as usize];
                let other = &self.pool[s as usize..(s + len) as usize];
                xor_sorted(&self.col, other, &mut self.scratch);
                std::mem::swap(&mut self.col, &mut self.scratch);
            }
            if !paired {
                self.bars.push([fe, f64::INFINITY]);
                self.essential.push(true);
            }
        }
        for &(_, t) in &self.tri_order {
            self.tri_rank[t as usize] = ABSENT;
        }
        (n_edges, n_tri)
    }
}

/// Symmetric difference of two sorted lists (Z/2 column addition) into `out`.
pub(super) fn xor_sorted(a: &[u32], b: &[u32], out: &mut Vec<u32>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}
