/* Fork detection: objects remember the generation they were made in and
 * re-make what cannot cross fork() (LMDB environments, curl connections,
 * mutexes a parent thread may have held). */
#ifndef DSC_FORK_H
#define DSC_FORK_H

/* Incremented in every child process; cheap to read on hot paths. */
unsigned dsc_fork_generation(void);

/* Keep an object a child must neither use nor free (freeing could close
 * the parent's connections or locks); it stays reachable for leak
 * checkers and is never touched again. */
void dsc_fork_graveyard(void *p);

/* Serializes re-making objects in a child (threads of the child may race
 * to be first); always usable, even if a parent thread held it. */
void dsc_fork_remake_lock(void);
void dsc_fork_remake_unlock(void);

#endif
