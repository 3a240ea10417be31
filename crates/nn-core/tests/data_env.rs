//! `DataLocator::from_env`. A single test in its own binary, because it changes environment variables.

use std::path::PathBuf;

use nn_core::data::DataLocator;

#[test]
fn from_env_reads_mathnn_data_and_the_cache_chain() {
    // SAFETY: this test binary has one test and no other thread reads the environment.
    unsafe {
        std::env::set_var("MATHNN_DATA", "/data/root");
        std::env::set_var("MATHNN_CACHE", "/cache/explicit");
        std::env::set_var("XDG_CACHE_HOME", "/xdg");
        std::env::set_var("HOME", "/home/u");
    }
    let l = DataLocator::from_env(Some(PathBuf::from("/given")));
    assert_eq!(l.data_dir, Some(PathBuf::from("/given")));
    assert_eq!(l.env_dir, Some(PathBuf::from("/data/root")));
    assert_eq!(l.cache_dir, Some(PathBuf::from("/cache/explicit")));

    // Empty values count as unset.
    unsafe {
        std::env::set_var("MATHNN_DATA", "");
        std::env::set_var("MATHNN_CACHE", "");
    }
    let l = DataLocator::from_env(None);
    assert_eq!(l.data_dir, None);
    assert_eq!(l.env_dir, None);
    assert_eq!(l.cache_dir, Some(PathBuf::from("/xdg/mathnn")));

    unsafe {
        std::env::remove_var("XDG_CACHE_HOME");
    }
    assert_eq!(
        DataLocator::from_env(None).cache_dir,
        Some(PathBuf::from("/home/u/.cache/mathnn"))
    );

    unsafe {
        std::env::remove_var("HOME");
    }
    assert_eq!(DataLocator::from_env(None).cache_dir, None);
}
