//! The matricization table (acceptance 2, spec §4): all 54 cases and the proof construction.

use tensor_decomp::expressivity::{
    balanced_rank, cp_rank_lower_bound, delta_pairs_tt, matricization_table, random_tt,
    theorem_bound,
};

#[test]
fn odd_even_rank_matches_the_closed_form_in_all_54_cases() {
    let rows = matricization_table(&[4, 6, 8], &[2, 3, 4], &[2, 3, 4], 0).unwrap();
    assert_eq!(rows.len(), 54);
    assert_eq!(rows.iter().filter(|r| r.shared_cores).count(), 27);
    for row in &rows {
        let (d, n, r) = (row.d, row.n, row.r);
        let expected = n.pow(d as u32 / 2 - 1) * n.min(r);
        assert_eq!(row.odd_even_rank, expected, "{row:?}");
        assert_eq!(row.predicted_odd_even, expected);
        // Balanced split: min(r, n^{d/2}) — no exponential growth.
        assert_eq!(row.balanced_rank, r.min(n.pow(d as u32 / 2)), "{row:?}");
        let q = n.min(r);
        assert_eq!(row.theorem_bound, q.pow(d as u32 / 2));
        assert!(row.odd_even_rank >= row.theorem_bound);
        assert_eq!(row.odd_even_rank == row.theorem_bound, n <= r);
        assert_eq!(row.construction_rank, row.theorem_bound, "{row:?}");
        // Far from the tolerance: the kept values are ≥ 1e-13 relative, the dropped ones round-off.
        assert!(row.smallest_kept_rel > 1e-13, "{row:?}");
        assert!(row.largest_dropped_rel < 1e-14, "{row:?}");
    }
    // Shared cores give exactly the same ranks as independent cores.
    for pair in rows.chunks(2) {
        assert!(!pair[0].shared_cores && pair[1].shared_cores);
        assert_eq!(pair[0].odd_even_rank, pair[1].odd_even_rank);
        assert_eq!(pair[0].balanced_rank, pair[1].balanced_rank);
    }
}

#[test]
fn proof_construction_has_alternating_ranks_and_exact_bound() {
    for d in [4, 6, 8] {
        for q in [2, 3, 4] {
            let tt = delta_pairs_tt(d, 4, q).unwrap();
            let mut ranks = vec![1];
            for _ in 0..d / 2 {
                ranks.extend([q, 1]);
            }
            assert_eq!(tt.ranks(), ranks);
            assert_eq!(cp_rank_lower_bound(&tt).unwrap(), q.pow(d as u32 / 2));
            assert_eq!(
                balanced_rank(&tt).unwrap(),
                if (d / 2) % 2 == 0 { 1 } else { q }
            );
            // Hand values: A[0,0,1,1,…] = 1, A[0,1,…] = 0.
            let mut idx = vec![0; d];
            assert_eq!(tt.element(&idx).unwrap(), 1.0);
            idx[1] = 1;
            assert_eq!(tt.element(&idx).unwrap(), 0.0);
        }
    }
}

#[test]
fn random_tt_is_seeded_and_shares_cores() {
    let a = random_tt(6, 3, 2, true, 4).unwrap();
    assert_eq!(a, random_tt(6, 3, 2, true, 4).unwrap());
    assert_ne!(a, random_tt(6, 3, 2, true, 5).unwrap());
    assert_eq!(a.cores()[1], a.cores()[4]);
    let b = random_tt(6, 3, 2, false, 4).unwrap();
    assert_ne!(b.cores()[1], b.cores()[2]);
    assert_eq!(a.ranks(), vec![1, 2, 2, 2, 2, 2, 1]);
    assert_eq!(theorem_bound(6, 3, 2).unwrap(), 8);
}
