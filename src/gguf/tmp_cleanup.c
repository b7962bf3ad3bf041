/* Removal of in-progress temporary files on SIGINT/SIGTERM (tmp_cleanup.h).
 * The paths live in fixed static slots, so the handler touches no memory that
 * a save could free under it; it only calls unlink, which is
 * async-signal-safe, then lets the signal end the process as it would have. */
#include "tmp_cleanup.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 16
#define PATH_CAP 4096

static char g_path[SLOTS][PATH_CAP];
static atomic_int g_used[SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_active;                 /* registered slots; under g_lock */
static const int g_sigs[2] = {SIGINT, SIGTERM};
static struct sigaction g_prev[2];
static int g_ours[2];                /* we installed the handler for g_sigs[i] */

static void on_signal(int sig)
{
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&g_used[i])) unlink(g_path[i]);
    /* The default action again, and the signal again: the process ends as
     * it would have without us (exit status and core rules included). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

int kq__tmp_register(const char *path)
{
    size_t len = strlen(path);
    if (len >= PATH_CAP) return -1;
    pthread_mutex_lock(&g_lock);
    int slot = -1;
    for (int i = 0; i < SLOTS && slot < 0; i++)
        if (!atomic_load(&g_used[i])) slot = i;
    if (slot >= 0) {
        memcpy(g_path[slot], path, len + 1);
        atomic_store(&g_used[slot], 1);
        if (g_active++ == 0) {
            for (int s = 0; s < 2; s++) {
                g_ours[s] = 0;
                if (sigaction(g_sigs[s], NULL, &g_prev[s]) != 0) continue;
                if ((g_prev[s].sa_flags & SA_SIGINFO) || g_prev[s].sa_handler != SIG_DFL) continue;
                struct sigaction sa;
                memset(&sa, 0, sizeof sa);
                sa.sa_handler = on_signal;
                sigemptyset(&sa.sa_mask);
                g_ours[s] = sigaction(g_sigs[s], &sa, NULL) == 0;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return slot;
}

void kq__tmp_forget(int slot)
{
    if (slot < 0 || slot >= SLOTS) return;
    pthread_mutex_lock(&g_lock);
    atomic_store(&g_used[slot], 0);
    if (--g_active == 0) {
        for (int s = 0; s < 2; s++) {
            if (!g_ours[s]) continue;
            /* Put back the default only if nobody replaced our handler since. */
            struct sigaction now;
            if (sigaction(g_sigs[s], NULL, &now) == 0 && !(now.sa_flags & SA_SIGINFO) &&
                now.sa_handler == on_signal)
                sigaction(g_sigs[s], &g_prev[s], NULL);
            g_ours[s] = 0;
        }
    }
    pthread_mutex_unlock(&g_lock);
}
