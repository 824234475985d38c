//! The fault matrix: every fault the provider must survive, in one table
//! (see `common/matrix/` for the cases and the script each one follows).

#[path = "common/matrix/mod.rs"]
mod matrix;
#[path = "common/peer.rs"]
mod peer;

#[tokio::test(flavor = "current_thread")]
async fn fault_matrix() {
    let cases = matrix::cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failed = Vec::new();
    let mut out = matrix::Outcome::default();
    for case in &cases {
        let started = std::time::Instant::now();
        let result = matrix::run(case, &mut out).await;
        eprintln!("{:>6} ms  {}", started.elapsed().as_millis(), case.name);
        if let Err(why) = result {
            failed.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
    println!("fault matrix: {} cases passed", cases.len());
}
