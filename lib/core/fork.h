/* Fork detection: objects remember the generation they were made in and
 * re-make what cannot cross fork() (LMDB environments, curl connections,
 * mutexes a parent thread may have held). */
#ifndef DSC_CORE_FORK_H
#define DSC_CORE_FORK_H

/* Incremented in every child process; cheap to read on hot paths. */
unsigned dsc_fork_generation(void);

/* Per-process state (connections, LMDB environments, thread pools)
 * carries the generation it was made in. DSC_FORK_NONE: not made yet. */
#define DSC_FORK_NONE (~0u)

/* Record that the state guarded by *gen belongs to this process. */
void dsc_fork_mark(unsigned *gen);
/* Whether the state guarded by *gen belongs to this process. */
int dsc_fork_current(const unsigned *gen);

/* Make the state guarded by *gen this process's: when it is not (first
 * use after fork(), or never made), run remake(arg) once under the remake
 * lock, and mark *gen when that returns 0. Other threads wait for it.
 * Returns 0 when the state is this process's, else remake's error (the
 * next call tries again). The one way every module re-makes its state. */
typedef int (*dsc_fork_remake_fn)(void *arg);
int dsc_fork_ensure(unsigned *gen, dsc_fork_remake_fn remake, void *arg);

/* Keep an object a child must neither use nor free (freeing could close
 * the parent's connections or locks); it stays reachable for leak
 * checkers and is never touched again. */
void dsc_fork_graveyard(void *p);

/* Serializes re-making objects in a child (threads of the child may race
 * to be first); always usable, even if a parent thread held it. */
void dsc_fork_remake_lock(void);
void dsc_fork_remake_unlock(void);

#endif
