/* Temporary files of saves in progress, removed if SIGINT or SIGTERM ends the
 * process mid-save (a multi-gigabyte half-written file would otherwise stay
 * behind). The handler is installed only while a save runs and only where the
 * signal's disposition is the default: a program that handles or ignores the
 * signal itself keeps doing so, and cleans up its own way. */
#ifndef KQ_GGUF_TMP_CLEANUP_H
#define KQ_GGUF_TMP_CLEANUP_H

/* Registers path (copied) for removal; returns a slot for kq__tmp_forget, or
 * -1 when it cannot be registered (the save goes on without the cleanup). */
int kq__tmp_register(const char *path);
/* The save is over (renamed or removed): the path is no longer ours. */
void kq__tmp_forget(int slot);

#endif
