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
