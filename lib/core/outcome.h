/* Internal outcomes: what a lookup or an insert found, as opposed to an
 * error. They live in one reserved range, as LMDB reserves -30800..-30999
 * for MDB_NOTFOUND and friends, away from the public DSC_E* codes (-1 ..
 * -99), so a value is never both. They never leave the library: every
 * public function turns them into 0 or a DSC_E* code, and dsc_strerror
 * names them only to make a leak obvious in a log.
 *
 * Convention: 0 is success; a function that can also answer with an
 * outcome says which ones in its header comment; any other negative value
 * is a DSC_E* error with dsc_errmsg() set. */
#ifndef DSC_CORE_OUTCOME_H
#define DSC_CORE_OUTCOME_H

#define DSC_OUTCOME_FIRST     (-1000)
#define DSC_ABSENT            (-1000)  /* no such entry, file or metadata */
#define DSC_EXISTS            (-1001)  /* another writer stored it first */
#define DSC_NOT_ADMITTED      (-1002)  /* the eviction policy said no */
#define DSC_CORRUPT           (-1003)  /* bytes failed their size or hash */
#define DSC_EMPTY_RANGE       (-1004)  /* a range of an empty object */
#define DSC_RETRY             (-1005)  /* conditions changed (the index map
                                          grew): do it all again */
#define DSC_BUSY              (-1006)  /* another thread or process is at
                                          it; not waited for */
#define DSC_OUTCOME_LAST      (-1006)

static inline int dsc_is_outcome(int rc)
{
    return rc <= DSC_OUTCOME_FIRST && rc >= DSC_OUTCOME_LAST;
}

/* Name of an outcome ("absent"), NULL for anything else. */
const char *dsc_outcome_name(int rc);

#endif
