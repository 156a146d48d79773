//! The readable part of a run: the results table, greenlet / peer ratios,
//! the targets, and the rows of issue 14's table.

use crate::Res;

pub fn summary(all: &[Res]) {
    println!("== Results ==");
    println!(
        "{:<10} {:<18} {:>12} {:>10} {:>10} {:>10}  notes",
        "bench", "peer", "metric", "value", "min", "max"
    );
    for r in all {
        if !r.ok() {
            println!(
                "{:<10} {:<18} {:>12} {:>10}  {}",
                r.bench,
                r.peer,
                r.get("status").unwrap_or(""),
                "-",
                r.get("reason").unwrap_or("")
            );
            continue;
        }
        if r.bench.starts_with("sleep") {
            println!(
                "{:<10} {:<18} {:>12} {:>10.3} {:>10.3} {:>10.3}  spawn loop {} s, CPU {} s, RSS {} -> peak {} KiB (n={})",
                r.bench,
                r.peer,
                "wall s",
                r.num("wall_s").unwrap_or(f64::NAN),
                r.num("wall_s_pmin").unwrap_or(f64::NAN),
                r.num("wall_s_pmax").unwrap_or(f64::NAN),
                r.get("spawn_s").unwrap_or("?"),
                r.get("cpu_s").unwrap_or("?"),
                r.get("rss_before_kib").unwrap_or("?"),
                r.get("hwm_after_kib").unwrap_or("?"),
                r.get("n").unwrap_or("?"),
            );
            println!(
                "{:<10} {:<18} {:>12} {:>10.2} {:>10} {:>10}  ({} bytes)",
                r.bench,
                r.peer,
                "KiB/task",
                r.num("kib_per").unwrap_or(f64::NAN),
                "",
                "",
                r.get("bytes_per").unwrap_or("?"),
            );
        } else {
            let metric = format!("ns/{}", r.get("unit").unwrap_or("op"));
            println!(
                "{:<10} {:<18} {:>12} {:>10.1} {:>10.1} {:>10.1}  {} procs x {} runs; cold first run {:.1} [{:.1}-{:.1}] ns; CPU time median/first {}/{} ns{}",
                r.bench,
                r.peer,
                metric,
                r.num("ns").unwrap_or(f64::NAN),
                r.num("ns_pmin").unwrap_or(f64::NAN),
                r.num("ns_pmax").unwrap_or(f64::NAN),
                r.get("procs").unwrap_or("?"),
                r.get("runs").unwrap_or("?"),
                r.num("ns_first").unwrap_or(f64::NAN),
                r.num("ns_first_pmin").unwrap_or(f64::NAN),
                r.num("ns_first_pmax").unwrap_or(f64::NAN),
                r.num("cpu_ns").map_or("-".into(), |v| format!("{v:.1}")),
                r.num("cpu_ns_first")
                    .map_or("-".into(), |v| format!("{v:.1}")),
                r.get("alternates")
                    .map(|a| format!(", strict alternation: {a}"))
                    .unwrap_or_default(),
            );
        }
    }
    println!();

    println!("== Ratios greenlet / peer (below 1 = greenlet faster/smaller) ==");
    let benches: Vec<&str> = {
        let mut v: Vec<&str> = all.iter().map(|r| r.bench.as_str()).collect();
        v.dedup();
        v
    };
    for b in &benches {
        let Some(g) = all
            .iter()
            .find(|r| r.bench == *b && r.peer == "greenlet" && r.ok())
        else {
            continue;
        };
        for p in all
            .iter()
            .filter(|r| r.bench == *b && r.peer != "greenlet" && !r.peer.starts_with("greenlet"))
        {
            if !p.ok() {
                println!(
                    "{:<10} greenlet/{:<18} n/a ({})",
                    b,
                    p.peer,
                    p.get("status").unwrap_or("")
                );
                continue;
            }
            let metrics: &[(&str, &str)] = if b.starts_with("sleep") {
                &[("wall_s", "wall"), ("kib_per", "RSS/task")]
            } else {
                &[("ns", "time")]
            };
            let parts: Vec<String> = metrics
                .iter()
                .filter_map(|(k, name)| Some(format!("{name} {:.2}x", g.num(k)? / p.num(k)?)))
                .collect();
            println!("{:<10} greenlet/{:<18} {}", b, p.peer, parts.join(", "));
        }
    }
    println!();

    println!("== Targets ==");
    let find = |b: &str, p: &str| all.iter().find(|r| r.bench == b && r.peer == p && r.ok());
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    if let (Some(g), Some(c)) = (find("switch", "greenlet"), find("switch", "corosensei")) {
        let cpu = match (g.num("cpu_ns"), c.num("cpu_ns")) {
            (Some(gc), Some(cc)) => format!(" (CPU time: {:.2}x)", gc / cc),
            _ => String::new(),
        };
        let (g, c) = (g.num("ns").unwrap(), c.num("ns").unwrap());
        println!(
            "switch     greenlet {g:.1} ns/switch <= 4x corosensei round trip ({c:.1} ns): {:.2}x  {}{cpu}",
            g / c,
            verdict(g <= 4.0 * c)
        );
    }
    for b in ["spawn.one", "spawn.all"] {
        if let Some(g) = find(b, "greenlet") {
            let v = g.num("ns").unwrap();
            println!(
                "{b:<10} greenlet {v:.1} ns per spawn+join <= 150 ns: {}",
                verdict(v <= 150.0)
            );
        }
    }
    if let Some(g) = find("sleep100k", "greenlet") {
        let (w, k) = (g.num("wall_s").unwrap(), g.num("kib_per").unwrap());
        println!(
            "sleep100k  greenlet wall {w:.3} s <= 1.10 s (cold process): {}; {k:.2} KiB/greenlet <= 4.6 KiB: {}",
            verdict(w <= 1.10),
            verdict(k <= 4.6)
        );
    }
    for b in ["sleep100k", "sleep1m"] {
        if let Some(g) = find(b, "greenlet-warm") {
            let w = g.num("wall_s").unwrap();
            let limit = if b == "sleep100k" { 1.10 } else { 2.5 };
            println!(
                "{b:<10} greenlet wall {w:.3} s <= {limit:.2} s (warm, second run in the process): {}",
                verdict(w <= limit)
            );
        }
    }
    issue14_rows(all);
    if let Some(g) = all
        .iter()
        .find(|r| r.bench == "sleep1m" && r.peer == "greenlet")
    {
        if g.ok() {
            let w = g.num("wall_s").unwrap();
            println!(
                "sleep1m    greenlet completes, wall {w:.3} s <= 2.5 s (cold process): {} ({:.2} KiB/greenlet)",
                verdict(w <= 2.5),
                g.num("kib_per").unwrap_or(f64::NAN)
            );
        } else {
            println!(
                "sleep1m    greenlet did not complete: MISS ({})",
                g.get("reason").unwrap_or("")
            );
        }
    }
}

/// The rows of issue 14's table, as that issue states them (fresh-process
/// figures; spawn is the cold first run of each fresh process).
fn issue14_rows(all: &[Res]) {
    let find = |b: &str, p: &str| all.iter().find(|r| r.bench == b && r.peer == p && r.ok());
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!("-- issue 14 rows --");
    if let (Some(g), Some(t)) = (find("spawn.all", "greenlet"), find("spawn.all", "tokio")) {
        let cpu = match (g.num("cpu_ns_first"), t.num("cpu_ns_first")) {
            (Some(gc), Some(tc)) => format!(" (CPU time: {:.2}x)", gc / tc),
            _ => String::new(),
        };
        let (g, t) = (g.num("ns_first").unwrap(), t.num("ns_first").unwrap());
        println!(
            "spawn 1M then join all, fresh process (cold first run): greenlet {g:.1} ns, tokio \
             {t:.1} ns: {:.2}x <= 0.5x  {}{cpu}",
            g / t,
            verdict(g <= 0.5 * t)
        );
    }
    for (b, limit) in [("sleep100k", 1.10), ("sleep1m", 2.5)] {
        if let Some(g) = find(b, "greenlet") {
            let w = g.num("wall_s").unwrap();
            let tokio = find(b, "tokio")
                .and_then(|t| t.num("wall_s"))
                .map_or(String::new(), |t| format!(", tokio {t:.3} s"));
            // CPU time of the same span (the 1 s of sleep costs none): on
            // a shared machine the wall time includes time preempted.
            let cpu = match (
                g.num("cpu_s"),
                find(b, "tokio").and_then(|t| t.num("cpu_s")),
            ) {
                (Some(gc), Some(tc)) => format!(" (CPU time: greenlet {gc:.3} s, tokio {tc:.3} s)"),
                (Some(gc), None) => format!(" (CPU time: greenlet {gc:.3} s)"),
                _ => String::new(),
            };
            println!(
                "{b} cold (fresh process): greenlet {w:.3} s [{:.3}-{:.3}]{tokio}: <= {limit:.2} s  {}{cpu}",
                g.num("wall_s_pmin").unwrap_or(f64::NAN),
                g.num("wall_s_pmax").unwrap_or(f64::NAN),
                verdict(w <= limit)
            );
        }
    }
    println!("(queue ping-pong: queue/; HTTP: http/; downloads: download/)");
}
