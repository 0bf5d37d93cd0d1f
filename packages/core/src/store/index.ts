// `@belfry/core/store`: what a store implementation needs.
export { StoreError, type StoreErrorCode } from '../errors';
export { townSchema } from '../model/schema';
export { toFrozenJson } from './json';
export { encodeEntry, encodeKey, entryId, queryBounds } from './keys';
export { MemoryStore, type MemoryStoreOptions } from './MemoryStore';
export type {
  CollectionSchema,
  IndexFunction,
  IndexKey,
  IndexQuery,
  JsonObject,
  JsonValue,
  KeyPart,
  Store,
  StoredRecord,
  StoreSchema,
  StoreTx,
} from './Store';
export {
  checkIndex,
  checkRecord,
  collectionIndexes,
  indexKeys,
  queryLimit,
  TransactionQueue,
  txGuard,
} from './support';
