package blk

import (
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// A File's reads and writes of pages the page cache holds are copies to
// and from a shared mapping of the file, not system calls. A pread of
// 4 KiB from the cache took 1.2 µs here, a copy of it from a mapping
// 0.26 µs (0.30 µs from a fresh mapping, faults included); a pwrite of
// 4 KiB on ext4 6 µs, a copy into the mapping 0.6 µs, the faults that
// mark its pages dirty included. The call, not the copy, is most of what
// a transfer costs the device. The mapping is the page cache itself, so
// it and the system calls see each other's writes as they happen, and
// fdatasync (FLUSH) writes back what the copies dirtied as it does
// pwrite's. Only pages residentPages knows to be cached are copied, so a
// copy does not wait on the disk to read a page in. A copy that faults
// (SIGBUS: the file was cut short under the mapping, or the filesystem
// could not give a written page its blocks) fails instead, and the
// system call that follows reports what the file now holds or why it
// cannot.
//
// A write is copied only inside the file's size as fstat finds it just
// before (0.7 µs here): the part of the last page past the end of a file
// cut short is not the file's, and what a copy put there would be lost,
// where pwrite would extend the file. A read takes that part as zeros for
// at most forgetResident after the cut, instead of failing.
//
// A page is known cached once a system call moved it (residentPages), or
// once mincore found it so: a read or write that carries on where the
// last one ended, and finds its pages unknown, asks mincore about the
// learnPages pages from its own on, in one call. That is how a disk read
// or written once from start to end gets copies at all. mincore took 45 µs for 512 cached
// pages here, 0.09 µs a page against 1.2 µs for a pread of one; a reader
// jumping about asks it nothing, and pays only the try's pread, as
// before. mincore reports the page cache of a file the process may write
// or owns; of any other, only pages the process has mapped, fewer than
// are cached: then only fewer reads are copies.
//
// The pages a copy touched count in the process's resident set (as
// shared file pages, RssFile), as they would in any process mapping the
// file; they are the page cache's, not memory the VMM owns. The page
// tables that map them are the VMM's, though: 2 MiB of them for each GiB
// of disk touched, and kept until the mapping goes. So once remapAfter
// bytes have been copied, a forget replaces the mapping with a fresh one
// and unmaps the old (remap): both stay within what about 64 MiB of
// copies touch (256 MiB under a load that keeps the file busy), 128 KiB
// of page tables, at the price of faulting the pages in again
// (fault-around maps 64 KiB a fault for reads).

// mapFile maps the first size bytes of b's file, writable unless the
// disk is read-only, and starts tracking which of its pages are cached. A
// file that cannot be mapped is moved with system calls only.
func (b *File) mapFile(size int64) {
	m, err := b.mmap(int(size))
	if err != nil {
		return
	}
	b.mapped = m
	b.remapAfter = remapAfter
	b.resident = newResidentPages(size, forgetResident)
	b.resident.afterForget = b.remap
}

// remapAfter is how many bytes copies move through one mapping before
// remap replaces it.
const remapAfter = 64 << 20

// mmap maps the first size bytes of the file, shared, writable unless the
// disk is read-only.
func (b *File) mmap(size int) ([]byte, error) {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if b.readOnly {
		prot = unix.PROT_READ
	}
	return unix.Mmap(b.fd, 0, size, prot, unix.MAP_SHARED)
}

// remap replaces the mapping with a fresh one once remapAfter bytes were
// copied through it, and unmaps the old one, freeing its page tables. It
// takes mu when no transfer holds it (TryLock), so that it makes none
// wait, and tries again at the next forget; only once 4 × remapAfter
// were copied, under a load that never left mu free, does it wait for the
// transfers in flight (new ones wait meanwhile, for one transfer's time
// at most). The old mapping is unmapped after mu is released: every copy
// from it held mu for reading, and has ended.
func (b *File) remap() {
	copied := b.copied.Load()
	if copied < b.remapAfter {
		return
	}
	if !b.mu.TryLock() {
		if copied < 4*b.remapAfter {
			return
		}
		b.mu.Lock()
	}
	old, swapped := b.mapped, false
	if !b.closed && old != nil {
		if m, err := b.mmap(len(old)); err == nil {
			b.mapped, swapped = m, true
			b.copied.Store(0)
		}
	}
	b.mu.Unlock()
	if swapped {
		unix.Munmap(old)
	}
}

// unmap stops reads from the mapping and unmaps it. The caller holds mu
// for writing, or has the only reference to b.
func (b *File) unmap() {
	if b.mapped != nil {
		unix.Munmap(b.mapped)
		b.mapped, b.resident = nil, nil
	}
}

// copyCached moves bufs, n bytes, to or from the mapping at off, when
// every page they span is known cached, and reports whether it moved them
// all; false moved none, some or all of them. A transfer that starts
// where the last of its kind ended, and finds its pages unknown, learns
// ahead first. The caller holds mu.
func (b *File) copyCached(bufs [][]byte, off int64, n int, write bool) bool {
	if b.resident == nil || write && b.readOnly {
		return false
	}
	last := &b.readEnd
	if write {
		last = &b.writeEnd
	}
	sequential := last.Swap(off+int64(n)) == off
	if !b.cached(off, n) && !(sequential && b.learnAhead(off) && b.cached(off, n)) {
		return false
	}
	m := b.mapped[off : off+int64(n)]
	if write {
		var st unix.Stat_t
		if unix.Fstat(b.fd, &st) != nil || st.Size < off+int64(n) {
			return false
		}
	}
	if !copyMapped(bufs, m, write) {
		return false
	}
	b.copied.Add(int64(n))
	return true
}

// learnPages is how many pages a sequential transfer's miss asks mincore
// about: 512 KiB of disk, 11 µs here, learnt for the next 128 4 KiB
// transfers.
const learnPages = 128

// learnAhead asks mincore which of the learnPages pages from off's are
// cached and marks them, and reports whether it asked. Only pages wholly
// inside the file as fstat finds it now are marked: the part of a last
// page past the end of a file cut short would read as zeros from the
// mapping, not fail. The caller holds mu, and has checked that b is
// mapped.
func (b *File) learnAhead(off int64) bool {
	var st unix.Stat_t
	if unix.Fstat(b.fd, &st) != nil {
		return false
	}
	first := off &^ pageMask
	end := min(first+learnPages<<pageShift, int64(len(b.mapped)), st.Size) &^ pageMask
	var vec [learnPages]byte
	if first >= end || mincore(b.mapped[first:end], vec[:]) != nil {
		return false
	}
	// Mark each run of cached pages with one call.
	pages := int((end - first) >> pageShift)
	for i := 0; i < pages; {
		j := i
		for j < pages && vec[j]&1 != 0 {
			j++
		}
		if j > i {
			b.resident.mark(first+int64(i)<<pageShift, int64(j-i)<<pageShift)
		}
		i = j + 1
	}
	return true
}

// copyMapped copies m into bufs, or bufs into m for a write; bufs hold
// exactly len(m) bytes. It reports false if a page of m faulted.
func copyMapped(bufs [][]byte, m []byte, write bool) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			ok = false
		}
	}()
	for _, p := range bufs {
		if write {
			copy(m, p)
		} else {
			copy(p, m)
		}
		m = m[len(p):]
	}
	return true
}
