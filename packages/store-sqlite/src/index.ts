export { type Durability, SqliteStore, type SqliteStoreOptions } from './SqliteStore';
