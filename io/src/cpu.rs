//! CPU affinity: the CPUs this process may run on (taskset, container
//! cpusets) and pinning the calling thread to one of them. Best effort and
//! silent: a caller that cares about a failed pin logs it itself.

/// Pins the calling thread to `cpu`. Returns whether the kernel accepted it
/// (a container may restrict the CPU set; a CPU beyond `CPU_SETSIZE` is
/// refused without asking).
pub fn pin_to_cpu(cpu: usize) -> bool {
    if cpu >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes inside
    // it (cpu < CPU_SETSIZE, checked above); sched_setaffinity reads
    // size_of::<cpu_set_t>() bytes from a live value.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The CPUs this process may run on, ascending. When the kernel will not
/// say (or says none), `0..available_parallelism`.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is valid; sched_getaffinity fills at
    // most size_of::<cpu_set_t>() bytes of it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            Some(set)
        } else {
            None
        }
    };
    let cpus: Vec<usize> = match &set {
        Some(set) => (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| {
                // SAFETY: reads one bit of a live set; c < CPU_SETSIZE.
                unsafe { libc::CPU_ISSET(c, set) }
            })
            .collect(),
        None => Vec::new(),
    };
    if cpus.is_empty() {
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
    } else {
        cpus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_cpus_is_sorted_and_not_empty() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn pins_to_an_allowed_cpu_and_refuses_an_impossible_one() {
        let cpus = allowed_cpus();
        let first = cpus[0];
        let t = std::thread::spawn(move || {
            let pinned = pin_to_cpu(first);
            (pinned, allowed_cpus())
        });
        let (pinned, after) = t.join().unwrap();
        assert!(pinned);
        assert_eq!(after, vec![first], "sched_getaffinity is per thread");
        assert!(!pin_to_cpu(usize::MAX));
        assert!(!pin_to_cpu(libc::CPU_SETSIZE as usize));
    }
}
