// Package rootfs turns an OCI image's layers into the read-only ext4 disk a
// micro-VM mounts as the lower layer of its root overlay.
//
// Flattening follows docker's layer extraction, with these rules:
//
//   - Whiteouts: ".wh.NAME" deletes NAME and ".wh..wh..opq" empties its
//     directory, of what lower layers put there only (OCI image spec): a
//     layer's whiteouts are applied before its entries, whatever the order.
//     Other ".wh..wh." (AUFS) entries are dropped.
//   - Later entries replace earlier ones; a directory over a directory merges.
//   - Names are confined: leading "/" is dropped (re-rooted, as docker does);
//     ".." is resolved lexically and a name that would climb above the root
//     is rejected (ErrPathEscape); NUL, a component over 255 bytes or a name
//     over PATH_MAX is ErrMalformed.
//   - A symlink met on the way to an entry's parent is followed inside the
//     root, as docker's chrooted extraction and the guest kernel follow it:
//     with etc -> /host, "etc/passwd" is written to host/passwd. An entry's
//     own last component is never followed; it replaces a symlink there.
//     Symlink targets themselves are kept as written, for the guest to
//     resolve in its own root.
//   - A hardlink must name an existing non-directory inside the tree; its
//     path obeys the rules above (ErrPathEscape, ErrHardlink). Names share
//     the inode, so deleting or replacing the first name later leaves the
//     others with the data; the output carries the data under the first
//     remaining name and links the rest to it.
//   - Device nodes and FIFOs are kept: the disk is only ever mounted by the
//     guest kernel, so they open the guest's devices, never the host's.
//     (A 0:0 character device reads as a whiteout to the guest's overlayfs,
//     as it does under docker's overlay2.)
//   - Kept metadata: mode with setuid/setgid/sticky, uid, gid, mtime, device
//     numbers, symlink targets, user.* and security.* xattrs. system.* and
//     trusted.* xattrs are dropped (see keptXattr).
//   - Options.MaxBytes and MaxEntries bound what an image can make the host
//     read and store (ErrTooLarge). A layer that is not a tar, or whose
//     content does not hash to its diff_id, fails with a LayerError naming
//     its digest.
package rootfs
