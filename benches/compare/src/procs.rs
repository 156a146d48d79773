//! One figure from several fresh processes: merges the `RESULT` lines that
//! the same (bench, peer) printed in each of its processes.

use crate::Res;
use crate::util::median_min_max;

/// Merges the results of one (bench, peer) over its processes, in order of
/// first appearance. Every numeric field becomes the median over the
/// processes, with its spread in `<field>_pmin` / `<field>_pmax`; `procs`
/// says how many processes gave it. If any process failed, its failure is
/// the result (a figure is only given when every process produced it).
pub fn merge(all: Vec<Res>) -> Vec<Res> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &all {
        let k = (r.bench.clone(), r.peer.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(bench, peer)| {
            let group: Vec<&Res> = all
                .iter()
                .filter(|r| r.bench == bench && r.peer == peer)
                .collect();
            if let Some(failed) = group.iter().find(|r| !r.ok()) {
                return (*failed).clone();
            }
            let mut fields = Vec::new();
            for (k, v) in &group[0].fields {
                let vals: Vec<f64> = group.iter().filter_map(|r| r.num(k)).collect();
                if vals.len() != group.len() || k == "n" || k == "runs" {
                    fields.push((k.clone(), v.clone()));
                    continue;
                }
                let (med, min, max) = median_min_max(&vals);
                // Integers (KiB, byte counts) stay integers.
                let prec = if v.contains('.') { 3 } else { 0 };
                fields.push((k.clone(), format!("{med:.prec$}")));
                fields.push((format!("{k}_pmin"), format!("{min:.prec$}")));
                fields.push((format!("{k}_pmax"), format!("{max:.prec$}")));
            }
            fields.push(("procs".into(), group.len().to_string()));
            Res {
                bench,
                peer,
                fields,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::merge;
    use crate::Res;

    fn res(line: &str) -> Res {
        Res::parse(line).expect("a RESULT line")
    }

    #[test]
    fn median_and_spread_over_processes() {
        let merged = merge(vec![
            res("RESULT spawn.all greenlet n=10 unit=spawn_join ns=30.0 ns_first=90.0 runs=5"),
            res("RESULT spawn.all tokio n=10 unit=spawn_join ns=50.0 ns_first=70.0 runs=5"),
            res("RESULT spawn.all greenlet n=10 unit=spawn_join ns=10.0 ns_first=80.0 runs=5"),
            res("RESULT spawn.all greenlet n=10 unit=spawn_join ns=20.0 ns_first=60.0 runs=5"),
        ]);
        assert_eq!(merged.len(), 2);
        let g = &merged[0];
        assert_eq!(
            (g.bench.as_str(), g.peer.as_str()),
            ("spawn.all", "greenlet")
        );
        assert_eq!(g.num("ns"), Some(20.0));
        assert_eq!(g.num("ns_pmin"), Some(10.0));
        assert_eq!(g.num("ns_pmax"), Some(30.0));
        assert_eq!(g.num("ns_first"), Some(80.0));
        assert_eq!(g.get("runs"), Some("5"));
        assert_eq!(g.get("n"), Some("10"));
        assert_eq!(g.get("unit"), Some("spawn_join"));
        assert_eq!(g.get("procs"), Some("3"));
        assert_eq!(merged[1].num("ns"), Some(50.0));
        assert_eq!(merged[1].get("procs"), Some("1"));
    }

    #[test]
    fn integers_stay_integers_and_even_counts_average() {
        let merged = merge(vec![
            res("RESULT sleep1m tokio n=5 wall_s=1.000 hwm_after_kib=100"),
            res("RESULT sleep1m tokio n=5 wall_s=2.000 hwm_after_kib=300"),
        ]);
        assert_eq!(merged[0].get("wall_s"), Some("1.500"));
        assert_eq!(merged[0].get("hwm_after_kib"), Some("200"));
        assert_eq!(merged[0].get("hwm_after_kib_pmax"), Some("300"));
    }

    #[test]
    fn a_failed_process_fails_the_figure() {
        let merged = merge(vec![
            res("RESULT sleep100k may n=5 wall_s=1.000"),
            res("RESULT sleep100k may status=failed n=5 reason=out of mappings"),
        ]);
        assert_eq!(merged.len(), 1);
        assert!(!merged[0].ok());
        assert_eq!(merged[0].get("reason"), Some("out of mappings"));
    }
}
