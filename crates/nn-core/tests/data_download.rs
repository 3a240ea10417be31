//! Downloads against a tiny local HTTP/1.1 server: a good file is fetched and verified, a corrupted one
//! is rejected and leaves nothing behind, a 404 mirror falls through to the next one. The ignored test
//! serves the real MNIST test files from `$MATHNN_DATA`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use nn_core::NnError;
use nn_core::data::locate::sha256_file;
use nn_core::data::{DatasetName, RemoteFile, fetch, fetch_files, verify};
use sha2::{Digest, Sha256};

/// A local server that answers exactly `max_requests` GET requests, then exits. Returns its base URL
/// and a handle that yields the request paths in order.
fn serve(
    routes: HashMap<String, Vec<u8>>,
    max_requests: usize,
) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..max_requests {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" || line == "\n" => break,
                    Ok(_) => {}
                }
            }
            let mut parts = request.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("").to_string(),
            );
            let (status, body): (&str, &[u8]) = match routes.get(&path) {
                _ if method != "GET" => ("405 Method Not Allowed", b"only GET"),
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"not found"),
            };
            let mut stream = reader.into_inner();
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(body));
            seen.push(path);
        }
        seen
    });
    (base, handle)
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `RemoteFile` for `bytes` (names and hashes are leaked: tests only).
fn remote(name: &str, bytes: &[u8]) -> RemoteFile {
    RemoteFile {
        name: Box::leak(name.to_string().into_boxed_str()),
        sha256: Box::leak(sha_hex(bytes).into_boxed_str()),
        bytes: bytes.len() as u64,
    }
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The names in `dir`, sorted (temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Records (file name, announced total, bytes counted) per download.
#[derive(Default)]
struct Bytes(std::sync::Mutex<Vec<(String, u64, u64)>>);

impl nn_core::progress::Progress for Bytes {
    fn message(&self, text: &str) {
        self.0.lock().unwrap().push((text.to_string(), 0, 0));
    }
    fn start(&self, total: u64, done: u64) {
        let mut v = self.0.lock().unwrap();
        let last = v.last_mut().unwrap();
        (last.1, last.2) = (total, done);
    }
    fn advance(&self, n: u64) {
        self.0.lock().unwrap().last_mut().unwrap().2 += n;
    }
}

#[test]
fn good_files_are_fetched_verified_and_not_fetched_twice() {
    let (a, b) = (payload(1, 70_000), payload(2, 10));
    let routes = HashMap::from([
        ("/m/a.gz".to_string(), a.clone()),
        ("/m/b.bin".to_string(), b.clone()),
    ]);
    let (base, server) = serve(routes, 2);
    let files = [remote("a.gz", &a), remote("b.bin", &b)];
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("sub");
    let progress = Bytes::default();
    fetch_files(&files, &dir, &[format!("{base}/m/")], Some(&progress)).unwrap();
    // The progress saw each file by name, its size announced and every byte counted.
    assert_eq!(
        *progress.0.lock().unwrap(),
        vec![
            ("a.gz".to_string(), 70_000, 70_000),
            ("b.bin".to_string(), 10, 10)
        ]
    );
    assert_eq!(std::fs::read(dir.join("a.gz")).unwrap(), a);
    assert_eq!(std::fs::read(dir.join("b.bin")).unwrap(), b);
    assert_eq!(listing(&dir), vec!["a.gz", "b.bin"]);
    // Everything is present and valid: no request is made (the server is gone after two).
    fetch_files(&files, &dir, &[format!("{base}/m")], None).unwrap();
    assert_eq!(server.join().unwrap(), vec!["/m/a.gz", "/m/b.bin"]);
}

#[test]
fn corrupted_download_is_rejected_and_nothing_is_left() {
    let good = payload(3, 5_000);
    let mut bad = good.clone();
    bad[1234] ^= 0x40;
    let file = remote("data.gz", &good);
    let (base, server) = serve(
        HashMap::from([("/bad/data.gz".to_string(), bad.clone())]),
        1,
    );
    let dest = tempfile::tempdir().unwrap();
    let err = fetch_files(&[file], dest.path(), &[format!("{base}/bad/")], None).unwrap_err();
    let NnError::Download { url, reason } = &err else {
        panic!("expected a download error, got {err:?}")
    };
    assert_eq!(url, &format!("{base}/bad/data.gz"));
    assert!(reason.contains("sha256 mismatch"), "{err}");
    assert!(
        reason.contains(&format!("expected {}", sha_hex(&good))),
        "{err}"
    );
    assert!(reason.contains(&format!("got {}", sha_hex(&bad))), "{err}");
    assert!(
        listing(dest.path()).is_empty(),
        "left behind: {:?}",
        listing(dest.path())
    );
    assert_eq!(server.join().unwrap().len(), 1);
}

#[test]
fn oversized_download_is_cut_off_and_discarded() {
    let good = payload(4, 100);
    let file = remote("f", &good);
    let (base, _server) = serve(HashMap::from([("/f".to_string(), payload(4, 1000))]), 1);
    let dest = tempfile::tempdir().unwrap();
    let err = fetch_files(&[file], dest.path(), std::slice::from_ref(&base), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the expected 100 bytes"), "{err}");
    assert!(
        listing(dest.path()).is_empty(),
        "left behind: {:?}",
        listing(dest.path())
    );
}

#[test]
fn a_404_mirror_falls_through_to_the_next() {
    let good = payload(5, 3_000);
    let file = remote("x.bin", &good);
    let (base, server) = serve(
        HashMap::from([("/second/x.bin".to_string(), good.clone())]),
        2,
    );
    let dest = tempfile::tempdir().unwrap();
    let mirrors = [format!("{base}/first/"), format!("{base}/second/")];
    fetch_files(&[file], dest.path(), &mirrors, None).unwrap();
    assert_eq!(std::fs::read(dest.path().join("x.bin")).unwrap(), good);
    assert_eq!(
        server.join().unwrap(),
        vec!["/first/x.bin", "/second/x.bin"]
    );
}

#[test]
fn when_every_mirror_fails_the_error_lists_them_all() {
    let good = payload(6, 300);
    let mut bad = good.clone();
    bad[0] ^= 1;
    let file = remote("y.bin", &good);
    let (base, _server) = serve(HashMap::from([("/corrupt/y.bin".to_string(), bad)]), 2);
    let dest = tempfile::tempdir().unwrap();
    let mirrors = [format!("{base}/gone"), format!("{base}/corrupt")];
    let err = fetch_files(&[file], dest.path(), &mirrors, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{base}/corrupt/y.bin")) && err.contains("sha256 mismatch"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{base}/gone/y.bin")) && err.contains("404"),
        "{err}"
    );
    assert!(listing(dest.path()).is_empty());
}

#[test]
fn an_invalid_existing_file_is_replaced() {
    let good = payload(7, 800);
    let file = remote("z.bin", &good);
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("z.bin"), b"stale partial download").unwrap();
    let (base, server) = serve(HashMap::from([("/z.bin".to_string(), good.clone())]), 1);
    fetch_files(&[file], dest.path(), &[base], None).unwrap();
    assert_eq!(std::fs::read(dest.path().join("z.bin")).unwrap(), good);
    assert_eq!(listing(dest.path()), vec!["z.bin"]);
    assert_eq!(server.join().unwrap().len(), 1);
}

#[test]
fn unreachable_mirror_and_non_downloadable_sets_are_errors() {
    let dest = tempfile::tempdir().unwrap();
    let file = remote("w", b"w");
    // Bind and drop a listener to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetch_files(
        &[file],
        dest.path(),
        &[format!("http://127.0.0.1:{port}/")],
        None,
    )
    .unwrap_err();
    assert!(matches!(err, NnError::Download { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}/w")),
        "{err}"
    );
    let err = fetch_files(&[file], dest.path(), &[], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mirrors"), "{err}");
    let err = fetch(DatasetName::Pets32, dest.path(), &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pets32") && err.contains("not downloadable"),
        "{err}"
    );
    let err = fetch(DatasetName::Generated, dest.path(), &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("generated") && err.contains("nothing to fetch"),
        "{err}"
    );
    assert!(listing(dest.path()).is_empty());
}

fn real_mnist_dir() -> PathBuf {
    let root = std::env::var_os("MATHNN_DATA").expect("set MATHNN_DATA to ../shared/data");
    PathBuf::from(root).join("mnist")
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn real_mnist_test_files_are_fetched_with_their_real_sha256() {
    let src = real_mnist_dir();
    let t10k: Vec<RemoteFile> = DatasetName::Mnist
        .files()
        .iter()
        .copied()
        .filter(|f| f.name.starts_with("t10k"))
        .collect();
    assert_eq!(t10k.len(), 2);
    let mut routes = HashMap::new();
    for f in &t10k {
        let bytes = std::fs::read(src.join(f.name)).unwrap();
        assert_eq!(sha_hex(&bytes), f.sha256, "{} in {}", f.name, src.display());
        let mut corrupt = bytes.clone();
        let k = corrupt.len() / 2;
        corrupt[k] = corrupt[k].wrapping_add(1);
        routes.insert(format!("/mirror/{}", f.name), bytes);
        routes.insert(format!("/corrupt/{}", f.name), corrupt);
    }
    let (base, server) = serve(routes, 3);
    let dest = tempfile::tempdir().unwrap();
    // The corrupted copy is rejected.
    let err = fetch_files(&t10k[..1], dest.path(), &[format!("{base}/corrupt/")], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sha256 mismatch") && err.contains(t10k[0].sha256),
        "{err}"
    );
    assert!(listing(dest.path()).is_empty());
    // The real files are fetched and match.
    fetch_files(&t10k, dest.path(), &[format!("{base}/mirror/")], None).unwrap();
    for f in &t10k {
        assert_eq!(sha256_file(&dest.path().join(f.name)).unwrap(), f.sha256);
    }
    assert_eq!(
        listing(dest.path()),
        vec!["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    );
    assert_eq!(server.join().unwrap().len(), 3);
    // verify() sees the two test files and reports the train files missing.
    let status = verify(dest.path(), DatasetName::Mnist).unwrap();
    let ok: Vec<&str> = status
        .iter()
        .filter(|s| s.ok)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        ok,
        vec!["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    );
    assert!(
        status
            .iter()
            .filter(|s| !s.ok)
            .all(|s| s.reason == "missing"),
        "{status:?}"
    );
}

#[test]
#[ignore = "needs MATHNN_DATA"]
fn real_mnist_is_fetched_into_a_data_root_and_loads() {
    use nn_core::data::{DataLocator, load_dataset};
    let src = real_mnist_dir();
    let routes: HashMap<String, Vec<u8>> = DatasetName::Mnist
        .files()
        .iter()
        .map(|f| {
            (
                format!("/{}", f.name),
                std::fs::read(src.join(f.name)).unwrap(),
            )
        })
        .collect();
    let (base, server) = serve(routes, 4);
    let root = tempfile::tempdir().unwrap();
    let dir = fetch(DatasetName::Mnist, root.path(), &[base], None).unwrap();
    assert_eq!(dir, root.path().join("mnist"));
    assert_eq!(server.join().unwrap().len(), 4);
    assert!(
        verify(&dir, DatasetName::Mnist)
            .unwrap()
            .iter()
            .all(|s| s.ok)
    );
    let locator = DataLocator {
        data_dir: Some(root.path().to_path_buf()),
        env_dir: None,
        cache_dir: None,
    };
    let data = load_dataset(DatasetName::Mnist, &locator).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
}
